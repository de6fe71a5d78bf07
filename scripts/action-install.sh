#!/usr/bin/env bash
# Installs envgate for the composite action (action.yml).
#
#   action-install.sh plan      sets the step outputs target, root and key
#   action-install.sh install   downloads the release binary for the runner
#                               (when VERSION names a release that has one),
#                               else builds the action's own source with
#                               cargo install --locked
#
# Variables: ACTION_PATH, ACTION_REPOSITORY, VERSION, OS, ARCH (plan);
# TARGET and ROOT (install).
set -euo pipefail

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
        source="src-$(cd "$ACTION_PATH" && find Cargo.toml Cargo.lock src templates -type f -print0 \
            | sort -z | xargs -0 sha256sum | sha256sum | cut -c1-16)"
    fi
    {
        echo "target=$target"
        echo "root=${RUNNER_TOOL_CACHE:-$HOME/.cache}/envgate/$source-$target"
        echo "key=envgate-$target-$source"
    } >>"$GITHUB_OUTPUT"
}

install() {
    mkdir -p "$ROOT/bin"
    if [ -n "$VERSION" ] && [ "$TARGET" != unknown ]; then
        local url="${GITHUB_SERVER_URL:-https://github.com}/$ACTION_REPOSITORY/releases/download/$VERSION/envgate-$VERSION-$TARGET.tar.gz"
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
