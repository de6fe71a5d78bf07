#!/usr/bin/env bash
# Installs envgate for the composite action (action.yml).
#
#   action-install.sh plan      sets the step outputs version, target, root
#                               and key
#   action-install.sh install   downloads the release binary for the runner
#                               and checks it against the release's .sha256,
#                               else (no release, no binary for the runner)
#                               says so and builds the action's own source
#                               with cargo install --locked
#
# The release is VERSION (the action's `version` input) or, when that is
# empty, the ref the action is used at when it is a version tag
# (`uses: OWNER/envgate@v1.2.3`); a branch or commit builds from source.
#
# Variables: ACTION_PATH, VERSION, OS, ARCH (plan); VERSION, TARGET and ROOT
# (install); ACTION_REPOSITORY and ACTION_REF when known (github.action_*
# are empty inside composite actions, so by default they are read from the
# action's path, .../_actions/<owner>/<repo>/<ref>); GITHUB_SERVER_URL.
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

action_ref() {
    if [ -n "${ACTION_REF:-}" ]; then
        echo "$ACTION_REF"
        return
    fi
    case "$ACTION_PATH" in
        */_actions/*/*/*)
            local rest=${ACTION_PATH#*/_actions/}
            echo "$rest" | cut -d/ -f3
            ;;
        *) echo "" ;;
    esac
}

# The release to install: the input, else a version-tag ref, else none.
release_version() {
    if [ -n "${VERSION:-}" ]; then
        echo "$VERSION"
        return
    fi
    local ref
    ref=$(action_ref)
    if [[ "$ref" =~ ^v[0-9]+(\.[0-9]+)*(-[0-9A-Za-z.-]+)?$ ]]; then
        echo "$ref"
    fi
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
    local source version
    version=$(release_version)
    if [ -n "$version" ]; then
        source="release-$version"
    else
        source="src-$(cd "$ACTION_PATH" && {
            find Cargo.toml Cargo.lock src templates -type f | LC_ALL=C sort
            find Cargo.toml Cargo.lock src templates -type f -print0 | LC_ALL=C sort -z | xargs -0 cat
        } | sha256 | cut -c1-16)"
    fi
    {
        echo "version=$version"
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
        local name="envgate-$VERSION-$TARGET.tar.gz"
        local url="${GITHUB_SERVER_URL:-https://github.com}/$repository/releases/download/$VERSION/$name"
        local tmp
        tmp=$(mktemp -d)
        if curl -fsSL --retry 3 -o "$tmp/$name" "$url" && curl -fsSL --retry 3 -o "$tmp/$name.sha256" "$url.sha256"; then
            local want got
            want=$(cut -c1-64 <"$tmp/$name.sha256")
            got=$(sha256 <"$tmp/$name")
            if [ "$want" != "$got" ]; then
                echo "::error title=envgate::$name does not match its published checksum (expected $want, got $got); not installing it"
                exit 1
            fi
            tar -xzf "$tmp/$name" -C "$ROOT/bin" envgate
            rm -rf "$tmp"
            echo "installed the release binary $name (sha256 $got)"
            "$ROOT/bin/envgate" --version
            return
        fi
        rm -rf "$tmp"
        echo "::notice title=envgate::no release binary at $url (or no checksum beside it); building envgate from source instead, which takes a few minutes"
    elif [ -z "$VERSION" ]; then
        echo "::notice title=envgate::the action is used at a branch or commit, not a release tag; building envgate from source (use OWNER/envgate@<tag>, or the version input, for the release binary)"
    else
        echo "::notice title=envgate::no release binary for this runner ($TARGET); building envgate from source"
    fi
    if ! command -v cargo >/dev/null 2>&1; then
        echo "::error title=envgate::cargo is needed to build envgate (no release binary for $TARGET); add a Rust toolchain step"
        exit 1
    fi
    cargo install --locked --root "$ROOT" --path "$ACTION_PATH" --bin envgate
    "$ROOT/bin/envgate" --version
}

"$@"
