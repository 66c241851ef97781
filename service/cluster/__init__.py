"""Who gets which slot: fair shares, placement, reservations, preemption and the slot pool
over Ray's nodes. This room imports nothing else of `service`."""
