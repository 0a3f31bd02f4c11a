"""The app served to web browsers with textual-serve: one app process per tab, a cap on tabs.

It runs ``python -m ipc_explorer ...`` for each tab and knows nothing else of the project.
"""
