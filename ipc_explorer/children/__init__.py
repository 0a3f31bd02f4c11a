"""The programs the parent starts, each a separate process (``python -m ipc_explorer.children
--role sender|receiver|contender``): the session's sender and receiver, the lab's workers, and
the runtime they share (parent death, control on stdin, batched telemetry, clean exit)."""
