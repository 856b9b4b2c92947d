"""Checks that several engines' CSV answers to one question hold the same rows.

Usage: compare.py NAME=FILE [NAME=FILE ...]

The first file is the reference. Rows are compared after sorting by their first column (the date);
headers must be equal; dates and integers must be equal exactly, other numbers to a relative
1e-9; an empty field (NULL) equals only an empty field. Exit 0 when all agree, 1 (naming the
engines, files and the first differing row) when not.
"""

import csv
import math
import sys

REL_TOL = 1e-9


def load(path):
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    if not rows:
        raise ValueError("empty output (no header)")
    header, body = rows[0], [r for r in rows[1:] if r]
    return header, sorted(body, key=lambda r: r[0])


def as_int(text):
    try:
        return int(text)
    except ValueError:
        return None


def same_value(a, b):
    if a == b:
        return True
    if a == "" or b == "":
        return False
    ia, ib = as_int(a), as_int(b)
    if ia is not None and ib is not None:
        return ia == ib
    try:
        fa, fb = float(a), float(b)
    except ValueError:
        return False  # different text that is not a number (a date, say)
    if ia is not None or ib is not None:
        # an integer column printed as 3 by one engine and 3.0 by another
        return fa == fb and fa.is_integer()
    return math.isclose(fa, fb, rel_tol=REL_TOL, abs_tol=0.0)


def differ(ref, other):
    """The first difference between two loaded answers, as text, or None."""
    (h1, b1), (h2, b2) = ref, other
    if h1 != h2:
        return f"headers differ: {','.join(h1)} vs {','.join(h2)}"
    if len(b1) != len(b2):
        return f"{len(b1)} rows vs {len(b2)} rows"
    for r1, r2 in zip(b1, b2):
        if len(r1) != len(r2) or not all(same_value(a, b) for a, b in zip(r1, r2)):
            return f"row {','.join(r1)} vs {','.join(r2)}"
    return None


def main():
    pairs = [arg.split("=", 1) for arg in sys.argv[1:]]
    if not pairs or any(len(p) != 2 for p in pairs):
        sys.exit(__doc__)
    if len(pairs) == 1:
        print(f"bench: only {pairs[0][0]} answered: nothing to compare", file=sys.stderr)
    loaded = []
    for name, path in pairs:
        try:
            loaded.append((name, path, load(path)))
        except (OSError, ValueError) as e:
            print(f"bench: {name} gave no answer in {path}: {e}", file=sys.stderr)
            return 1
    ref_name, ref_path, ref = loaded[0]
    bad = 0
    for name, path, answer in loaded[1:]:
        why = differ(ref, answer)
        if why:
            bad += 1
            print(
                f"bench: {name} disagrees with {ref_name}: {why}\n"
                f"       ({path} vs {ref_path})",
                file=sys.stderr,
            )
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
