"""Learner text (exception names and messages, test output) is untrusted wherever it is shown.

`shown(text, sink)` is the one way any of it reaches a sink. Every sink gets the text with lone
surrogates replaced (a write cannot fail on them) and control characters written out as escapes
(`\\x1b`), so that an ESC cannot drive a terminal and a NUL cannot end a report early; then:

- TEXT: that only (plain-text reports: results.json, Gradescope's text output, classroom.json);
- XML: also every character XML 1.0 does not allow (U+FFFE, U+FFFF) replaced (junit.xml);
- MARKDOWN: also every HTML special character as an entity and every other ASCII punctuation
  character backslash-escaped, newlines as <br> (summary.md, GitHub's job summary, Gradescope's
  Markdown output): no heading, link, image, table cell or HTML tag can come from a learner;
- TERMINAL: also rich's markup escaped (`kata`, `kata watch`).

`identifier(name)` is for a remote exception's type name: an ASCII identifier, or "Exception".
"""
import re
from enum import Enum

REPLACEMENT = "\ufffd"
_SURROGATES = re.compile("[\ud800-\udfff]")
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f]")  # C0 but tab and newline, DEL, C1 (\r included: a newline is \n)
_NOT_XML = re.compile("[\ufffe\uffff]")
_MARKDOWN_PUNCTUATION = re.compile(r"""([!"#$%'()*+,\-./:;=?@\[\\\]^_`{|}~])""")
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,99}")


class Sink(Enum):
    TEXT = "text"
    XML = "xml"
    MARKDOWN = "markdown"
    TERMINAL = "terminal"


def shown(text, sink: Sink = Sink.TEXT) -> str:
    """`text` (anything: str() is taken) made safe for `sink`."""
    text = _SURROGATES.sub(REPLACEMENT, str(text)).replace("\r\n", "\n")
    text = _CONTROL.sub(lambda match: f"\\x{ord(match.group()):02x}", text)
    if sink is Sink.XML:
        return _NOT_XML.sub(REPLACEMENT, text)
    if sink is Sink.MARKDOWN:
        text = _MARKDOWN_PUNCTUATION.sub(r"\\\1", text)
        return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("\n", "<br>")
    if sink is Sink.TERMINAL:
        from rich.markup import escape

        return escape(text)
    return text


def identifier(name) -> str:
    """A remote exception's type name as it may be shown and used as a class name."""
    name = str(name)
    return name if _IDENTIFIER.fullmatch(name) else "Exception"
