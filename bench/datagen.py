"""Seeded generator of product CSV files shaped like the 500,000-row reference file.

Shape: header `name,sku,description`, CRLF row ends, about 60 % of descriptions spanning
several lines (LF inside a quoted field), hyphenated word SKUs and a share of rows that
repeat an earlier SKU in another letter case (the last of them wins on import).

    python bench/datagen.py out.csv --rows 500000 --seed 1
"""

from __future__ import annotations

import argparse
import csv
import random
from pathlib import Path

WORDS = (
    "put probably really however between thing magazine establish behavior serve bad policy training notice "
    "role experience relate open else per tree eye show discussion may several issue something candidate sit "
    "worry assume whatever party employee knowledge develop discover particularly painting realize animal care "
    "low little leave wrong firm late skill weight reduce control reflect pass good economic almost kid evening "
    "paper discuss argue area shake seek much western consider deal personal song season term south government "
    "language car film question lot energy heavy success know store would white hit ready bar thank hope body "
    "piece determine town decide hotel section want manage laugh happy environment actually turn together job "
    "performance around purpose strategy third statement room attack hundred take significant customer standard "
    "own anything part visit people floor successful then important possible maybe born federal suffer teacher "
    "none fire watch line charge drive fund likely only walk central live drop window minute soon figure along "
    "great suddenly rise doctor might day early building which stay act beat require grow information fly event "
    "toward ground stand community type produce should often interview way financial rest certain eat hospital "
    "year positive crime help them peace worker order ability camera save work garden trouble four better more "
    "team point long already most hair above five add local whether ahead treat think receive when dog report "
    "time pick owner growth specific reach note age decade dinner culture present share perform three action "
    "young himself lead professional today friend education risk despite benefit truth daughter coach situation "
    "space both until serious also sign surface away scientist listen poor southern here another board move raise"
).split()
FIRST_NAMES = (
    "Michael Jennifer Robert Jessica John David Christopher James Brian Jason Daniel Lisa Mary Sarah Jordan "
    "Katherine Michelle Anthony Jeffrey Thomas Karen Cynthia Justin Stephanie Mark Kimberly Melissa Steven Ryan "
    "Christina Joshua Amanda Samuel Ashley Megan Sandra Elizabeth Kevin Nicholas Shannon Jonathan Andrew"
).split()
LAST_NAMES = (
    "Smith Johnson Jones Brown Thomas Williams Rodriguez Gonzalez Moore Wright Davis Miller Lewis Hernandez "
    "Martinez Taylor Thompson Perez Hall Anderson Robinson Sanchez Morales Murray Walker Hart Butler Hughes "
    "Martin Wilson Parker White King Campbell Lopez Phillips Long Holt Rogers Carter Lee Torres Hill Pierce"
).split()
HEADER = ("name", "sku", "description")
_SKU_SPACE = len(WORDS) ** 3
_SKU_STRIDE = 2_654_435_761  # odd and coprime with the space: a bijection of row index to SKU


def unique_sku(index: int, rng: random.Random) -> str:
    """Distinct for every index below len(WORDS)**3, yet random-looking, like the reference SKUs."""
    code = (index * _SKU_STRIDE + 12345) % _SKU_SPACE
    size = len(WORDS)
    parts = [WORDS[code % size], WORDS[code // size % size], WORDS[code // size // size]]
    if rng.random() < 0.12:
        parts.append(rng.choice(WORDS))
    return "-".join(parts)


def _sentence(rng: random.Random) -> str:
    words = rng.choices(WORDS, k=rng.randint(4, 11))
    return " ".join(words).capitalize() + "."


def description(rng: random.Random) -> str:
    lines = [" ".join(_sentence(rng) for _ in range(rng.randint(1, 2))) for _ in range(rng.choice((1, 1, 2, 2, 3)))]
    return "\n".join(lines)


def _case_variant(sku: str, rng: random.Random) -> str:
    return rng.choice((sku.upper(), sku.title(), sku.capitalize(), sku.swapcase()))


def product_rows(rows: int, seed: int, duplicate_ratio: float = 0.07, variant: int = 0):  # type: ignore[no-untyped-def]
    """Yield (name, sku, description). `variant` changes names and descriptions but keeps the SKUs."""
    sku_rng = random.Random(seed)
    text_rng = random.Random(f"{seed}:{variant}")
    emitted: list[str] = []
    for index in range(rows):
        if emitted and sku_rng.random() < duplicate_ratio:
            sku = _case_variant(sku_rng.choice(emitted), sku_rng)
        else:
            sku = unique_sku(index, sku_rng)
            emitted.append(sku)
        name = f"{text_rng.choice(FIRST_NAMES)} {text_rng.choice(LAST_NAMES)}"
        yield name, sku, description(text_rng)


def write_products_csv(
    path: Path | str, rows: int, seed: int = 1, *, duplicate_ratio: float = 0.07, variant: int = 0
) -> Path:
    """Write `rows` data rows (plus the header) and return the path. Same arguments, same bytes."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\r\n")
        writer.writerow(HEADER)
        writer.writerows(product_rows(rows, seed, duplicate_ratio, variant))
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("path", type=Path)
    parser.add_argument("--rows", type=int, default=500_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--duplicates", type=float, default=0.07, help="share of rows repeating an earlier SKU")
    parser.add_argument("--variant", type=int, default=0, help="other names/descriptions, same SKUs")
    args = parser.parse_args()
    write_products_csv(args.path, args.rows, args.seed, duplicate_ratio=args.duplicates, variant=args.variant)
    print(f"wrote {args.rows} rows to {args.path} ({args.path.stat().st_size / 1e6:.1f} MB)")


if __name__ == "__main__":
    main()
