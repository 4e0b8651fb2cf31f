#!/usr/bin/env bash
# Builds the utility VM kernel of our own: Debian's linux-source tarball,
# `make tinyconfig` plus our fragment (images/kernel/uvm.config), then
# `olddefconfig`; everything built in, no modules. Produces bzImage (what
# `-kernel` boots everywhere) and vmlinux (the ELF with the PVH entry note).
#
# Cached by a hash of the fragment, the recipe version and the source version: the
# result lives in CACHE/kernel-<hash>/ and a second build with the same inputs
# only copies it. The extracted source is shared by every configuration.
#
# usage: build-kernel.sh --out DIR --fragment FILE [--cache DIR]
#          [--source /usr/src/linux-source-6.1.tar.xz] [--jobs N]
# Writes DIR/vmlinuz (bzImage), DIR/vmlinux, DIR/kernel-config, DIR/kernel-release.
set -euo pipefail
export LC_ALL=C

out= fragment= jobs=$(nproc)
cache=${XDG_CACHE_HOME:-$HOME/.cache}/uvmshim
source_tar=/usr/src/linux-source-6.1.tar.xz
while [[ $# -gt 0 ]]; do
  case $1 in
    --out) out=$2; shift 2 ;;
    --fragment) fragment=$2; shift 2 ;;
    --cache) cache=$2; shift 2 ;;
    --source) source_tar=$2; shift 2 ;;
    --jobs) jobs=$2; shift 2 ;;
    *) echo "build-kernel.sh: unknown argument '$1'" >&2; exit 2 ;;
  esac
done
tag="[uvm-kernel]"
say() { echo "$tag $*"; }
die() { echo "$tag error: $*" >&2; exit 1; }
[[ -n $out && -n $fragment ]] || die "--out and --fragment are required"
[[ -f $fragment ]] || die "--fragment $fragment: No such file"
[[ -f $source_tar ]] || die "--source $source_tar: No such file (apt-get install linux-source-6.1)"

# Source version: the Debian package's version when the tarball is packaged,
# else its size and mtime (a hand-made tarball).
source_version=$(dpkg -S "$source_tar" 2>/dev/null | cut -d: -f1 | head -1 |
                 xargs -r dpkg-query -W -f='${Package}-${Version}' 2>/dev/null || true)
[[ -n $source_version ]] || source_version=$(basename "$source_tar")-$(stat -c '%s-%Y' "$source_tar")
# Bump when the steps below change what a build produces.
recipe=1
hash=$( { echo "$source_version recipe=$recipe"; cat "$fragment"; } | sha256sum | cut -c1-16)
mkdir -p "$cache" "$out"
# One builder at a time per configuration: a cached configuration is not held
# up by another one's build in the same cache (another build tree, a test).
exec 9>"$cache/.kernel-$hash.lock"
flock 9

kdir=$cache/kernel-$hash
if [[ -f $kdir/.done ]]; then
  say "cached: $kdir ($source_version)"
else
  src=$cache/src-$source_version
  # The extracted source is shared by every configuration (read-only: each
  # builds in its own O= tree); one extraction at a time.
  exec 8>"$cache/.src-$source_version.lock"
  flock 8
  if [[ ! -f $src/.done ]]; then
    say "extracting $source_tar -> $src"
    rm -rf "$src" && mkdir -p "$src"
    tar -xf "$source_tar" -C "$src" --strip-components=1
    touch "$src/.done"
  fi
  exec 8>&-
  # An interrupted build of the same inputs (same hash) resumes: its object
  # tree is kept and make rebuilds only what is missing. Regenerating an
  # identical .config touches no include/config/* file, so nothing recompiles.
  # Only .done marks a usable result; the installed files are not written
  # before the build succeeds.
  if [[ -d $kdir/build ]]; then
    say "resuming the interrupted build in $kdir"
  else
    say "configuring $source_version with $(basename "$fragment") -> $kdir"
  fi
  mkdir -p "$kdir/build"
  rm -f "$kdir/vmlinuz" "$kdir/vmlinux" "$kdir/kernel-config" "$kdir/kernel-release"
  # A configuration that fails or is refused leaves nothing behind.
  trap 'rm -rf "$kdir"' EXIT
  make -s -C "$src" O="$kdir/build" ARCH=x86_64 tinyconfig >/dev/null
  "$src/scripts/kconfig/merge_config.sh" -m -O "$kdir/build" "$kdir/build/.config" "$fragment" >/dev/null
  make -s -C "$src" O="$kdir/build" ARCH=x86_64 olddefconfig >/dev/null
  # Every option the fragment asks for must have survived olddefconfig (a
  # missing dependency silently drops it otherwise).
  missing=0
  while IFS= read -r line; do
    [[ $line =~ ^(CONFIG_[A-Za-z0-9_]+)=(.*)$ ]] || continue
    if ! grep -qx "${BASH_REMATCH[1]}=${BASH_REMATCH[2]}" "$kdir/build/.config"; then
      echo "$tag $(basename "$fragment"): ${BASH_REMATCH[1]}=${BASH_REMATCH[2]} not in the final config" \
           "(got: $(grep -E "^(# )?${BASH_REMATCH[1]}[= ]" "$kdir/build/.config" || echo unset))" >&2
      missing=1
    fi
  done <"$fragment"
  # And every option it turns off must be off (something may select it).
  while IFS= read -r line; do
    [[ $line =~ ^#\ (CONFIG_[A-Za-z0-9_]+)\ is\ not\ set$ ]] || continue
    if grep -q "^${BASH_REMATCH[1]}=" "$kdir/build/.config"; then
      echo "$tag $(basename "$fragment"): ${BASH_REMATCH[1]} is on in the final config" \
           "(selected by another option?)" >&2
      missing=1
    fi
  done <"$fragment"
  [[ $missing -eq 0 ]] || die "the fragment's options above did not apply (unmet dependencies?)"
  trap - EXIT
  say "building bzImage + vmlinux with $jobs jobs (progress: one line per object)"
  start=$(date +%s)
  # ccache (when installed) makes a rebuild after a fragment change cheap.
  cc=gcc
  command -v ccache >/dev/null && cc="ccache gcc"
  if ! make -C "$src" O="$kdir/build" ARCH=x86_64 CC="$cc" -j"$jobs" KBUILD_BUILD_TIMESTAMP=@0 \
         KBUILD_BUILD_USER=uvmshim KBUILD_BUILD_HOST=uvmshim bzImage vmlinux 2>&1 | sed -u "s/^/$tag /"; then
    die "kernel build failed (log above)"
  fi
  install -m 0644 "$kdir/build/arch/x86/boot/bzImage" "$kdir/vmlinuz"
  install -m 0644 "$kdir/build/vmlinux" "$kdir/vmlinux"
  strip --strip-debug "$kdir/vmlinux"
  install -m 0644 "$kdir/build/.config" "$kdir/kernel-config"
  make -s -C "$src" O="$kdir/build" ARCH=x86_64 kernelrelease >"$kdir/kernel-release"
  say "built in $(( $(date +%s) - start )) s"
  # The object tree is not needed again (the hash covers every input).
  rm -rf "$kdir/build"
  touch "$kdir/.done"
fi
for f in vmlinuz vmlinux kernel-config kernel-release; do
  install -m 0644 "$kdir/$f" "$out/.$f.tmp" && mv -f "$out/.$f.tmp" "$out/$f"
done
say "vmlinuz $(stat -c %s "$out/vmlinuz") bytes, vmlinux $(stat -c %s "$out/vmlinux") bytes," \
    "release $(cat "$out/kernel-release") -> $out"
