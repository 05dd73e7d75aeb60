"""Background jobs: the workers, the delivery loops, the reminder scheduler and its
notifiers, the digest, manager alerts, retention."""
