"""`harmonycloak bench unlearning`: model-side forgetting of songs (unlearning as opt-out), measured on
the threat benchmark's data and attackers, beside the cloak on the same songs."""
