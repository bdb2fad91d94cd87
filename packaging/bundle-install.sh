#!/bin/sh
# netprobe-agent @VERSION@ for Debian 12 / Raspberry Pi OS bookworm, @ARCH@: the
# offline bundle's installer. It uses only apt and dpkg on the files beside it:
# no network, no change to this node's apt sources.
#
#   sudo ./install.sh                                # the agent
#   sudo ./install.sh python3-scapy speedtest-cli    # the agent and its optional parts
#
# apt reads the bundle as a local repository (the Packages index beside this
# script) and installs netprobe-agent with only those of its dependencies this
# node lacks; a package already installed at the same or a newer version is
# left alone. Check the files first if the bundle came by hand: sha256sum -c SHA256SUMS
# (and the tarball against the .sha256 published beside it).
set -eu

here=$(cd "$(dirname "$0")" && pwd)
case $here in
  *[[:space:]]*) echo "install.sh: move the bundle to a path without spaces first" >&2; exit 64 ;;
esac
for name in "$@"; do
  case $name in
    -h|--help) sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    -*) echo "install.sh: unknown option $name (give package names only)" >&2; exit 64 ;;
  esac
done
if [ "$(id -u)" -ne 0 ]; then
  echo "install.sh: run it as root: sudo $0 $*" >&2
  exit 77
fi
arch=$(dpkg --print-architecture)
if [ "$arch" != @ARCH@ ]; then
  echo "install.sh: this bundle is for @ARCH@ and this node is $arch: take netprobe-bundle_@VERSION@_$arch.tar.gz" >&2
  exit 65
fi

# A throwaway apt view that knows this node's installed packages and the bundle's
# files, nothing else: no stale list of this node's own sources can make apt want
# a download.
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/lists/partial" "$tmp/parts"
echo "deb [trusted=yes] file:$here ./" > "$tmp/bundle.list"
bundle_apt() {
  apt-get -q -o Dir::Etc::SourceList="$tmp/bundle.list" -o Dir::Etc::SourceParts="$tmp/parts" \
    -o Dir::State::Lists="$tmp/lists" -o Dir::Cache::pkgcache= -o Dir::Cache::srcpkgcache= \
    -o APT::Sandbox::User=root -o Acquire::Languages=none -o APT::Install-Recommends=false "$@"
}
bundle_apt update >/dev/null
# The bundle is apt's only source, so nothing can be downloaded. (Not
# --no-download: apt 2.6 then fails on a local repository with "Pathname to
# install is not absolute".)
bundle_apt -y install netprobe-agent "$@"
