#!/bin/bash
# Unpack e2fsprogs' regression images (tests/f_*/image.gz) for the opt-in corpus test
# tests/differential/stream/test_e2fsprogs_corpus.py.  The images are read from a clone of
# e2fsprogs (bare or not: git clone https://github.com/tytso/e2fsprogs) at test time and are
# never part of this repository.
#
#   tests/differential/e2fsprogs-images.sh E2FSPROGS_GIT [DEST]
#
# DEST defaults to /var/tmp/osdef-e2fsprogs-images/<commit>; the directory is printed last.
# Then: OSDEF_E2FSPROGS_TESTS=DEST .venv/bin/python -m pytest -n 2 tests/differential/stream/test_e2fsprogs_corpus.py
set -euo pipefail
if [ $# -lt 1 ]; then
    echo "usage: $0 E2FSPROGS_GIT [DEST]" >&2
    exit 2
fi
src=$1
commit=$(git -C "$src" rev-parse --verify HEAD)
dest=${2:-/var/tmp/osdef-e2fsprogs-images/$commit}
if [ ! -e "$dest/.complete" ]; then
    missing=0
    while read -r _ _ blob path; do
        [[ $path == tests/f_*/image.gz ]] || continue
        name=${path#tests/}
        mkdir -p "$dest/${name%/image.gz}"
        # a partial clone may lack some blobs: those images are left out and counted
        git -C "$src" cat-file blob "$blob" > "$dest/$name.part" 2>/dev/null \
            && mv "$dest/$name.part" "$dest/$name" \
            || { rm -rf "$dest/${name%/image.gz}"; missing=$((missing + 1)); }
    done < <(git -C "$src" ls-tree -r "$commit" tests/)
    [ "$missing" -eq 0 ] || echo "$missing images are missing from $src and were left out" >&2
    echo "$commit" > "$dest/.complete"
fi
echo "$dest"
