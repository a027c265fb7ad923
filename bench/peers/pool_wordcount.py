#!/usr/bin/env python3
"""The seed's approach to counting words, as a benchmark peer for tally.

A multiprocessing.Pool with one process per core: the parent cuts the file into blocks of
whole lines (about --block-bytes each), the pool maps a function over the blocks that decodes,
lowercases, finds words with the regex \\w+ and counts them in a collections.Counter, and the
parent merges the Counters. Prints one JSON line: words, unique words, bytes, seconds.

    python3 bench/peers/pool_wordcount.py FILE [--processes N] [--block-bytes B] [--top K] [--gzip]
"""
import argparse
import gzip
import json
import os
import re
import sys
import time
from collections import Counter
from multiprocessing import Pool

WORD = re.compile(r"\w+")


def count_block(block: bytes) -> Counter:
    return Counter(WORD.findall(block.decode("utf-8", errors="replace").lower()))


def line_blocks(path: str, block_bytes: int, compressed: bool = False):
    """Yields blocks of whole lines of about block_bytes bytes (of the text, for a gzip file)."""
    with (gzip.open(path, "rb") if compressed else open(path, "rb")) as f:
        rest = b""
        while True:
            data = f.read(block_bytes)
            if not data:
                break
            data = rest + data
            cut = data.rfind(b"\n")
            if cut < 0:
                rest = data
                continue
            yield data[: cut + 1]
            rest = data[cut + 1 :]
        if rest:
            yield rest


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("file")
    parser.add_argument("--processes", type=int, default=os.cpu_count())
    parser.add_argument("--block-bytes", type=int, default=1 << 20)
    parser.add_argument("--top", type=int, default=5)
    parser.add_argument("--gzip", action="store_true", help="FILE is gzip: the parent decompresses it as it reads")
    args = parser.parse_args()

    started = time.perf_counter()
    total = Counter()
    with Pool(processes=args.processes) as pool:
        for counts in pool.imap_unordered(count_block, line_blocks(args.file, args.block_bytes, args.gzip), chunksize=1):
            total.update(counts)
    seconds = time.perf_counter() - started
    json.dump(
        {
            "bytes": os.path.getsize(args.file),
            "processes": args.processes,
            "totalWords": sum(total.values()),
            "uniqueWords": len(total),
            "top": total.most_common(args.top),
            "seconds": seconds,
        },
        sys.stdout,
        ensure_ascii=False,
    )
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
