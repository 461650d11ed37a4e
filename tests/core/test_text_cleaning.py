import pytest

from commander.filetypes import content_problem, route, safe_filename
from commander.links import LinkScrubber, scrub
from handlers.text import clean_user_text, split_markdown


def stream(text: str, size: int) -> str:
    scrubber = LinkScrubber()
    out = [scrubber.feed(text[i : i + size]) for i in range(0, len(text), size)]
    return "".join(out) + scrubber.flush()


@pytest.mark.parametrize("size", [1, 2, 3, 5, 8, 1000])
def test_sandbox_links_are_removed_across_delta_boundaries(size: int) -> None:
    text = (
        "Here is the chart: ![chart](sandbox:/mnt/data/chart.png)\n"
        "[Download it](sandbox:/mnt/data/chart.png) or see sandbox:/mnt/data/data.csv now. "
        "A [normal link](https://example.com) stays."
    )
    result = stream(text, size)
    assert "sandbox:" not in result
    assert "Download it (attached)" in result
    assert "data.csv (attached)" in result
    assert "[normal link](https://example.com) stays." in result


def test_unclosed_bracket_is_released() -> None:
    text = "an array a[i] and [unclosed " + "x" * 600
    assert stream(text, 7) == text


def test_scrub_leaves_plain_text() -> None:
    assert scrub("nothing to see") == "nothing to see"


def test_safe_filename() -> None:
    assert safe_filename("../../etc/passwd") == "passwd"
    assert safe_filename("C:\\Users\\me\\report.pdf") == "report.pdf"
    assert safe_filename("a\x00b\x1f.txt") == "ab.txt"
    long = safe_filename("x" * 500 + ".pdf")
    assert len(long) <= 120 and long.endswith(".pdf")
    assert safe_filename("") == "file"


def test_routing() -> None:
    both = ["file_search", "code_interpreter"]
    assert route("a.pdf", both) == (["file_search", "code_interpreter"], None)
    assert route("a.csv", both) == (["code_interpreter"], None)
    assert route("a.go", both) == (["file_search"], None)
    assert route("a.exe", both)[1] and "not supported" in route("a.exe", both)[1]
    assert route("noext", both)[1]
    assert route("a.pdf", [])[1] and "turned off" in route("a.pdf", [])[1]


def test_content_sniffing() -> None:
    assert content_problem("a.png", b"<!DOCTYPE html><html>")
    assert content_problem("a.pdf", b"hello")
    assert content_problem("a.txt", b"abc\x00def")
    assert content_problem("a.pdf", b"%PDF-1.7 ...") is None
    assert content_problem("a.csv", b"a,b\n1,2\n") is None


def test_clean_user_text() -> None:
    assert clean_user_text("<@UBOT> what is 1 &lt; 2 &amp; 3?", "UBOT") == "what is 1 < 2 & 3?"
    assert clean_user_text("<@UBOT|bot>", "UBOT") == ""


def test_split_markdown_keeps_fences_balanced() -> None:
    text = "intro\n\n```python\n" + "print(1)\n" * 3000 + "```\n\nend"
    parts = split_markdown(text, limit=2000)
    assert len(parts) > 1
    assert all(len(p) <= 2000 for p in parts)
    assert all(p.count("```") % 2 == 0 for p in parts)
    assert "".join(parts).replace("```\n```\n", "").count("print(1)") == 3000
