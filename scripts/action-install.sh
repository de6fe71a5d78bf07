#!/usr/bin/env bash
# Installs envgate for the composite action (action.yml).
#
#   action-install.sh plan      sets the step outputs target, root and key
#   action-install.sh install   downloads the release binary for the runner
#                               (when VERSION names a release that has one),
#                               else builds the action's own source with
#                               cargo install --locked
#
# Variables: ACTION_PATH, VERSION, OS, ARCH (plan); TARGET and ROOT
# (install); ACTION_REPOSITORY when known (github.action_repository is empty
# inside composite actions, so by default it is read from the action's path,
# .../_actions/<owner>/<repo>/<ref>).
set -euo pipefail

sha256() { # sha256 of stdin, hex (macOS runners have shasum, not sha256sum)
    if command -v sha256sum >/dev/null 2>&1; then sha256sum; else shasum -a 256; fi | cut -c1-64
}

action_repository() {
    if [ -n "${ACTION_REPOSITORY:-}" ]; then
        echo "$ACTION_REPOSITORY"
        return
    fi
    case "$ACTION_PATH" in
        */_actions/*/*/*)
            local rest=${ACTION_PATH#*/_actions/}
            echo "${rest%%/*}/$(echo "$rest" | cut -d/ -f2)"
            ;;
        *) echo "" ;;
    esac
}

plan() {
    local target
    case "$OS/$ARCH" in
        Linux/X64) target=x86_64-unknown-linux-gnu ;;
        Linux/ARM64) target=aarch64-unknown-linux-gnu ;;
        macOS/X64) target=x86_64-apple-darwin ;;
        macOS/ARM64) target=aarch64-apple-darwin ;;
        Windows/X64) target=x86_64-pc-windows-msvc ;;
        *) target=unknown ;;
    esac
    # The cache key follows what would be built: the release asked for, or
    # the action's own source.
    local source
    if [ -n "$VERSION" ]; then
        source="release-$VERSION"
    else
        source="src-$(cd "$ACTION_PATH" && {
            find Cargo.toml Cargo.lock src templates -type f | LC_ALL=C sort
            find Cargo.toml Cargo.lock src templates -type f -print0 | LC_ALL=C sort -z | xargs -0 cat
        } | sha256 | cut -c1-16)"
    fi
    {
        echo "target=$target"
        echo "root=${RUNNER_TOOL_CACHE:-$HOME/.cache}/envgate/$source-$target"
        echo "key=envgate-$target-$source"
    } >>"$GITHUB_OUTPUT"
}

install() {
    mkdir -p "$ROOT/bin"
    local repository
    repository=$(action_repository)
    if [ -n "$VERSION" ] && [ "$TARGET" != unknown ] && [ -n "$repository" ]; then
        local url="${GITHUB_SERVER_URL:-https://github.com}/$repository/releases/download/$VERSION/envgate-$VERSION-$TARGET.tar.gz"
        if curl -fsSL --retry 3 "$url" | tar -xz -C "$ROOT/bin" envgate; then
            "$ROOT/bin/envgate" --version
            return
        fi
        echo "::notice title=envgate::no release binary at $url; building from source"
    fi
    if ! command -v cargo >/dev/null 2>&1; then
        echo "::error title=envgate::cargo is needed to build envgate (no release binary for $TARGET); add a Rust toolchain step"
        exit 1
    fi
    cargo install --locked --root "$ROOT" --path "$ACTION_PATH" --bin envgate
    "$ROOT/bin/envgate" --version
}

"$@"
