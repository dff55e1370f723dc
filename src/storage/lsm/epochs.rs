//! Read epochs: how the writer learns the lowest sequence number a reader that registered
//! no snapshot may still be reading at, without a lock per read.
//!
//! A point read or scan enters the current epoch (one counter per epoch parity) before it
//! takes the state and the visible sequence number, and leaves when done. The writer, when
//! it wants to know, looks at the previous epoch's counter: once it is zero every reader
//! still inside entered the current epoch, after the writer recorded the visible sequence
//! number and opened that epoch, so all of them read at or above that number. It then opens
//! the next epoch. Readers cost two atomic increments; nobody ever waits.

use std::sync::atomic::{AtomicU64, Ordering::SeqCst};

/// A counter alone on its cache line, so the two epochs' readers do not share one.
#[repr(align(128))]
#[derive(Default)]
struct Padded(AtomicU64);

/// The readers' side: the current epoch and how many readers are inside each parity.
#[derive(Default)]
pub struct ReadEpochs {
    epoch: AtomicU64,
    active: [Padded; 2],
}

/// A reader inside an epoch; leaving is dropping it.
pub struct ReadGuard<'a> {
    epochs: &'a ReadEpochs,
    slot: usize,
}

impl ReadEpochs {
    /// Enters the current epoch. Take the state and sequence number to read at after this.
    pub fn enter(&self) -> ReadGuard<'_> {
        loop {
            let epoch = self.epoch.load(SeqCst);
            let slot = (epoch & 1) as usize;
            self.active[slot].0.fetch_add(1, SeqCst);
            if self.epoch.load(SeqCst) == epoch {
                return ReadGuard { epochs: self, slot };
            }
            // The epoch moved on while we registered: the writer may have looked already.
            self.active[slot].0.fetch_sub(1, SeqCst);
        }
    }
}

impl Drop for ReadGuard<'_> {
    fn drop(&mut self) {
        self.epochs.active[self.slot].0.fetch_sub(1, SeqCst);
    }
}

/// The writer's side: the sequence number each open epoch started at, and the lowest one
/// a reader may still read at.
#[derive(Default)]
pub struct Horizon {
    /// By epoch parity: the visible sequence number when that epoch opened.
    opened_at: [u64; 2],
    /// Every reader not holding a registered snapshot reads at or above this.
    floor: u64,
}

impl Horizon {
    /// Moves to the next epoch if every reader of the previous one has left, recording
    /// `visible` (the newest published sequence number) as where it opens. Returns the
    /// floor. Called by one thread at a time (the engine's writer).
    pub fn advance(&mut self, epochs: &ReadEpochs, visible: u64) -> u64 {
        let epoch = epochs.epoch.load(SeqCst);
        let (current, previous) = ((epoch & 1) as usize, ((epoch + 1) & 1) as usize);
        if epochs.active[previous].0.load(SeqCst) == 0 {
            // Readers inside now entered the current epoch; those entering the next one
            // will read at `visible` or above.
            self.floor = self.opened_at[current];
            self.opened_at[previous] = visible;
            epochs.epoch.store(epoch + 1, SeqCst);
        }
        self.floor
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_floor_waits_for_readers_of_older_epochs() {
        let epochs = ReadEpochs::default();
        let mut horizon = Horizon::default();
        assert_eq!(horizon.advance(&epochs, 10), 0); // epoch 1 opens at 10
        let early = epochs.enter(); // in epoch 1: reads at 10 or above
        assert_eq!(horizon.advance(&epochs, 20), 10); // epoch 2 opens at 20
                                                      // `early` is still inside epoch 1: the floor stays at 10.
        assert_eq!(horizon.advance(&epochs, 30), 10);
        assert_eq!(horizon.advance(&epochs, 40), 10);
        drop(early);
        assert_eq!(horizon.advance(&epochs, 50), 20);
        assert_eq!(horizon.advance(&epochs, 60), 50);
        let late = epochs.enter(); // in epoch 4, opened at 60
        assert_eq!(horizon.advance(&epochs, 70), 60);
        assert_eq!(horizon.advance(&epochs, 80), 60);
        drop(late);
        assert_eq!(horizon.advance(&epochs, 90), 70);
    }
}
