"""Read a rendered page as a person sees it: elements by id, tables as rows of cell texts,
key/value lists as dicts. Text skips what only a screen reader hears (``.sr-only``), what
it does not (``aria-hidden``) and charts (``<svg>``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from html.parser import HTMLParser

VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "wbr"}


@dataclass
class Node:
    tag: str
    attrs: dict[str, str]
    children: list[Node | str] = field(default_factory=list)

    def text(self) -> str:
        """The visible text, whitespace collapsed; elements separated by a space."""
        return " ".join(self._text().split())

    def _text(self) -> str:
        if (
            self.tag == "svg"
            or "sr-only" in self.classes
            or self.attrs.get("aria-hidden") == "true"
        ):
            return ""
        inline = self.tag in ("wbr",)
        parts = [c if isinstance(c, str) else c._text() for c in self.children]
        joined = "".join(parts)
        return joined if inline else f" {joined} "

    @property
    def classes(self) -> set[str]:
        return set(self.attrs.get("class", "").split())

    def walk(self):  # type: ignore[no-untyped-def]
        yield self
        for child in self.children:
            if isinstance(child, Node):
                yield from child.walk()

    def find(self, id: str | None = None, tag: str | None = None, cls: str | None = None) -> Node:
        found = self.find_all(id=id, tag=tag, cls=cls)
        assert found, f"no element id={id} tag={tag} class={cls}"
        return found[0]

    def find_all(
        self, id: str | None = None, tag: str | None = None, cls: str | None = None
    ) -> list[Node]:
        return [
            n
            for n in self.walk()
            if (id is None or n.attrs.get("id") == id)
            and (tag is None or n.tag == tag)
            and (cls is None or cls in n.classes)
        ]


class _Parser(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.root = Node("document", {})
        self.stack = [self.root]

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        node = Node(tag, {k: v or "" for k, v in attrs})
        self.stack[-1].children.append(node)
        if tag not in VOID:
            self.stack.append(node)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.stack[-1].children.append(Node(tag, {k: v or "" for k, v in attrs}))

    def handle_endtag(self, tag: str) -> None:
        for depth in range(len(self.stack) - 1, 0, -1):
            if self.stack[depth].tag == tag:
                del self.stack[depth:]
                return

    def handle_data(self, data: str) -> None:
        self.stack[-1].children.append(data)


def parse(html: str) -> Node:
    parser = _Parser()
    parser.feed(html)
    parser.close()
    return parser.root


def table(html: str, table_id: str) -> list[list[str]]:
    """The cell texts of each body row of the table ``table_id``."""
    body = parse(html).find(id=table_id).find(tag="tbody")
    return [[cell.text() for cell in row.find_all(tag="td")] for row in body.find_all(tag="tr")]


def headers(html: str, table_id: str) -> list[str]:
    return [th.text() for th in parse(html).find(id=table_id).find(tag="thead").find_all(tag="th")]


def definitions(node: Node) -> dict[str, str]:
    """The terms and texts of the first key/value list (``<dl>``) in ``node``, top level only."""
    listing = node.find(tag="dl")
    found: dict[str, str] = {}
    term = None
    for child in listing.children:
        if isinstance(child, Node) and child.tag == "dt":
            term = child.text()
        elif isinstance(child, Node) and child.tag == "dd" and term is not None:
            found[term] = child.text()
    return found


def section(html: str, heading_id: str) -> Node:
    """The card (``<section aria-labelledby=...>``) headed by ``heading_id``."""
    found = [n for n in parse(html).walk() if n.attrs.get("aria-labelledby") == heading_id]
    assert found, f"no section headed {heading_id}"
    return found[0]


def text(html: str) -> str:
    """The whole page's visible text."""
    return parse(html).find(tag="body").text()
