"""What ipc-explorer says to a learner, kept apart from the code that measures: one module per
face (``flow``: each mechanism and format; ``lab``: each contention scenario and where each of
its figures comes from). Plain Markdown and text, no logic, no imports."""
