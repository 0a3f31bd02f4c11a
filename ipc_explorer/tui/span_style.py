"""One colour per kind of byte span, shared by every front end that draws annotated bytes
(the app's bytes panel and ``ipc-explorer decode``), so that a key looks the same in both."""

SPAN_STYLE = {
    "framing": "magenta",
    "header": "yellow",
    "length": "cyan",
    "key": "bold bright_blue",
    "string": "green",
    "int": "bright_cyan",
    "float": "bright_cyan",
    "bool": "red",
    "null": "red",
    "bytes": "white",
    "punct": "grey62",
    "whitespace": "grey42",
    "tag": "bright_blue",
    "attr": "cyan",
    "comment": "italic grey50",
}
