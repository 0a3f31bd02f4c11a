"""The Textual app: panels fed by the engine's state, never doing IPC themselves."""
