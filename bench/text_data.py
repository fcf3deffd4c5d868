"""Real English sentences harvested from the text files installed Python packages ship
(README, LICENSE, METADATA long descriptions, *.txt/*.md/*.rst docs), for benchmarks that need
real text without a download.

Deterministic: files are read in sorted order, sentences are deduplicated, and the order and
the calibration/evaluation split come from SHA-1 hashes (of the sentence, of the file path), so
the two splits are different sentences from different files, the same on every run.
"""

from __future__ import annotations

import hashlib
import re
import sysconfig
from pathlib import Path

_NAMES = re.compile(r"^(README|LICEN[CS]E|COPYING|NOTICE|METADATA|DESCRIPTION)", re.IGNORECASE)
_SUFFIXES = {".txt", ".md", ".rst"}
_SPLIT = re.compile(r"(?<=[.!?])\s+(?=[A-Z])")
_CODE_CHARS = set("{}[]<>=_`|\\#*@$~^/:;")
_MAX_FILE_BYTES = 256 * 1024


def _candidate_files(root: Path) -> list[Path]:
    files = []
    for path in sorted(root.rglob("*")):
        if not path.is_file() or path.stat().st_size > _MAX_FILE_BYTES:
            continue
        if _NAMES.match(path.name) or path.suffix.lower() in _SUFFIXES:
            files.append(path)
    return files


def _is_sentence(text: str) -> bool:
    words = text.split()
    if not 8 <= len(words) <= 40 or not text[0].isupper() or not text.endswith("."):
        return False
    if any(c in _CODE_CHARS for c in text) or text.isupper():
        return False
    letters = sum(c.isalpha() or c == " " for c in text)
    return letters / len(text) > 0.92 and sum(w[0].isupper() for w in words) < len(words) / 2


def _sentences(path: Path) -> list[str]:
    try:
        raw = path.read_text(encoding="utf-8")
    except (UnicodeDecodeError, OSError):
        return []
    found = []
    for paragraph in re.split(r"\n\s*\n", raw):
        flat = " ".join(paragraph.split())
        found.extend(s for s in _SPLIT.split(flat) if _is_sentence(s))
    return found


def _digest(text: str) -> str:
    return hashlib.sha1(text.encode("utf-8")).hexdigest()


def harvest_sentences(root: Path | None = None) -> tuple[list[str], list[str]]:
    """(calibration sentences, evaluation sentences) from the text files under `root`
    (default: this interpreter's site-packages). A file's sentences all go to one split (one
    file in three to calibration), a sentence seen twice is kept once, in its first file."""
    root = Path(root or sysconfig.get_paths()["purelib"])
    seen: set[str] = set()
    calib: list[str] = []
    evaluation: list[str] = []
    for path in _candidate_files(root):
        split = calib if int(_digest(str(path.relative_to(root))), 16) % 3 == 0 else evaluation
        for sentence in _sentences(path):
            key = sentence.lower()
            if key in seen:
                continue
            seen.add(key)
            split.append(sentence)
    return sorted(calib, key=_digest), sorted(evaluation, key=_digest)


if __name__ == "__main__":
    c, e = harvest_sentences()
    print(len(c), "calibration,", len(e), "evaluation sentences")
    for s in e[:10]:
        print(" -", s)
