#!/usr/bin/env bash
# Debian bookworm packages the build and tests need. Idempotent; needs root (or sudo).
set -euo pipefail
pkgs=(cmake ninja-build g++ pkg-config git
      nlohmann-json3-dev libcli11-dev libpcre2-dev libutf8proc-dev libsqlite3-dev libcpp-httplib-dev
      libpng-dev libjpeg62-turbo-dev libwebp-dev
      libavformat-dev libavcodec-dev libswscale-dev libavutil-dev ffmpeg
      libgtest-dev libbenchmark-dev)
missing=()
for p in "${pkgs[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}"
fi
