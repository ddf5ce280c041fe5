"""Where training stands: the loop's one variable.

A position is the global step, the epoch in progress and the batches done in it. Epochs
can end early (a file that fails to decode shortens a tf.data epoch), so the step alone
does not say where the run is; the three travel together, and `advance` is the only place
an epoch rolls over. A checkpoint records a position, and the loaders read an order that
is a function of (seed, epoch) alone, so a resumed run reads exactly the batches that
would have come next.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Position:
    """Steps done, the epoch in progress, batches done in it (always < steps per epoch)."""

    step: int = 0
    epoch: int = 0
    batch_in_epoch: int = 0

    def advance(self, steps_per_epoch: int) -> "Position":
        """The position after one more step; a full epoch rolls over to the next one."""
        if self.batch_in_epoch + 1 >= steps_per_epoch:
            return Position(self.step + 1, self.epoch + 1, 0)
        return Position(self.step + 1, self.epoch, self.batch_in_epoch + 1)

    @property
    def last_epoch(self) -> int:
        """The epoch the last step done belongs to (the one just finished at an epoch's
        end), for the logs."""
        return self.epoch - 1 if self.batch_in_epoch == 0 and self.epoch > 0 else self.epoch

    def next_epoch(self) -> "Position":
        """The start of the next epoch, at the same step (this one ended early)."""
        return Position(self.step, self.epoch + 1, 0)

    def normalized(self, steps_per_epoch: int) -> "Position":
        """A position whose epoch is complete (batch == steps per epoch, as a checkpoint of
        an earlier version may hold) as the start of the next one."""
        return self.next_epoch() if self.batch_in_epoch >= steps_per_epoch else self
