#!/usr/bin/env bash
# Regenerates docs/pictures/pr-comment.png and docs/pictures/check-run.png:
# what the bot posts on a pull request, drawn the way GitHub shows it.
#
# The text is envgate's own: `cargo run --example pictures` runs the bot's
# review job (jobs::review::run, templates/pr_comment.md.j2 and
# templates/status.md.j2) on a copy of examples/quickstart (dev, staging and
# prod as SQLite databases: applied, pending and drifted migrations) for a
# pull request adding its two newest migrations, and records the sticky
# comment and the check run's output instead of sending them.
# scripts/pictures.mjs turns that Markdown into GitHub-like HTML with
# `marked`, and headless Chromium screenshots it.
#
# Needs: cargo, Node.js 20 or later with npm (marked is installed from the
# npm registry under target/pictures once), and Chromium with the Noto fonts
# (installed with apt-get when missing, as root or through sudo). Those
# installs are the only network use: the review runs in-process on local
# SQLite files and Chromium opens local files. Intermediates go to
# target/pictures/.
#
#   scripts/pictures.sh          (from the repository's root or anywhere)
set -euo pipefail
cd "$(dirname "$0")/.."

work=target/pictures
out=docs/pictures
# The pull request's head commit, shown in the comment's footer.
sha=ec26c3e57ca3a959ca5aad62de7213c562f8c821
# Width of the pages, in CSS pixels; the pictures are drawn at twice that.
width=980
scale=2

if [ "$(id -u)" = 0 ]; then sudo=; else sudo=sudo; fi
apt_install() {
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null ||
        { $sudo apt-get update -qq >/dev/null &&
            $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null; }
}
command -v chromium >/dev/null 2>&1 || apt_install chromium
fc-list 2>/dev/null | grep -q "Noto Color Emoji" && fc-list 2>/dev/null | grep -q "NotoSans-Regular" ||
    apt_install fonts-noto-core fonts-noto-color-emoji fonts-noto-mono
command -v node >/dev/null 2>&1 || apt_install nodejs npm

mkdir -p "$work" "$out"
if [ ! -f "$work/node_modules/marked/package.json" ]; then
    [ -f "$work/package.json" ] || echo '{"private": true, "type": "module"}' >"$work/package.json"
    (cd "$work" && npm install --silent --no-audit --no-fund marked@18.3.0)
fi

# The bot's comment and check run, from a fresh copy of the quickstart (the
# run records what it saw in the copy's control store).
rm -rf "$work/quickstart"
cp -r examples/quickstart "$work/quickstart"
rm -rf "$work/quickstart/.envgate"
(cd "$work/quickstart" && cargo run --quiet --example pictures -- envgate.toml "$sha" \
    migrations/20260424_001_add_trash.sql migrations/20260424_002_audit_idx.sql) >"$work/payload.json"

cp scripts/pictures.mjs "$work/render.mjs"
node "$work/render.mjs" "$work/payload.json" "$work"

# Headless Chromium: first the page's height (the page writes it into the
# DOM), then a screenshot exactly that tall.
chrome() {
    chromium --headless --disable-gpu --no-sandbox --hide-scrollbars --no-first-run \
        --disable-extensions --disable-background-networking --disable-component-update \
        --user-data-dir="$work/chromium" "$@" 2>>"$work/chromium.log"
}
for name in pr-comment check-run; do
    html="$(pwd)/$work/$name.html"
    height=$(chrome --window-size="$width,4000" --virtual-time-budget=2000 --dump-dom "file://$html" |
        sed -n 's/.*data-height="\([0-9]*\)".*/\1/p' | head -n 1)
    [ -n "$height" ] || { echo "pictures: cannot measure $html (see $work/chromium.log)" >&2; exit 1; }
    chrome --window-size="$width,$height" --force-device-scale-factor="$scale" \
        --screenshot="$(pwd)/$out/$name.png" "file://$html" >/dev/null
    echo "$out/$name.png: ${width}x${height} CSS px at ${scale}x"
done
