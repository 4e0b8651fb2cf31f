#!/usr/bin/env bash
# Builds a utility VM boot image: a kernel (vmlinuz) and an initrd
# whose /init is the given program, with the kernel modules it loads (as
# uncompressed .ko files plus /lib/modules/load-order, dependencies first) and
# optionally a static busybox for the debug console.
#
# Reproducible: entries sorted, owner 0:0, fixed mtimes (SOURCE_DATE_EPOCH,
# default 0), normalised modes; the same inputs give the same bytes.
# Cached: the kernel .deb and its extraction live in --cache and are reused.
#
# usage: build-image.sh --out DIR --init FILE [--cache DIR]
#          [--kernel-package linux-image-cloud-amd64] [--modules "m1 m2 ..."]
#          [--kernel-dir DIR]  (a kernel of our own from build-kernel.sh:
#                               DIR/vmlinuz + DIR/kernel-release, all built in,
#                               so no modules and the module lists stay empty)
#          [--pvh]  (with --kernel-dir: the image's kernel is DIR/vmlinux, the
#                    uncompressed ELF whose PVH entry note QEMU's -kernel jumps
#                    to: no decompression, no real-mode setup; still named
#                    vmlinuz, the name every consumer of an image opens)
#          [--hyperv-modules "m1 ..."]  (own list, loaded only under Hyper-V)
#          [--module-list NAME="m1 ..."]...  (lib/modules/load-order.NAME, loaded by
#                               the agent only when it needs them, e.g. scsi
#                               and 9p for uvm.rootfs; a module this kernel
#                               does not have is skipped with a note)
#          [--busybox FILE] [--compression zstd|gzip|lz4|xz|none]
#          [--busybox-compression C]  (busybox and its applet links in an
#                    archive of their own compressed with C, put before the
#                    main one: the kernel unpacks concatenated archives. Default:
#                    one archive with --compression)
#          [--extra SRC=DST]...
set -euo pipefail
export LC_ALL=C

out= init= cache= busybox= compression=zstd busybox_compression=
kernel_package=linux-image-cloud-amd64
modules=
hyperv_modules=
kernel_dir=
pvh=0
extras=()
module_lists=()
while [[ $# -gt 0 ]]; do
  case $1 in
    --out) out=$2; shift 2 ;;
    --init) init=$2; shift 2 ;;
    --cache) cache=$2; shift 2 ;;
    --kernel-package) kernel_package=$2; shift 2 ;;
    --modules) modules=$2; shift 2 ;;
    --kernel-dir) kernel_dir=$2; shift 2 ;;
    --pvh) pvh=1; shift ;;
    --hyperv-modules) hyperv_modules=$2; shift 2 ;;
    --module-list) module_lists+=("$2"); shift 2 ;;
    --busybox) busybox=$2; shift 2 ;;
    --compression) compression=$2; shift 2 ;;
    --busybox-compression) busybox_compression=$2; shift 2 ;;
    --extra) extras+=("$2"); shift 2 ;;
    *) echo "build-image.sh: unknown argument '$1'" >&2; exit 2 ;;
  esac
done
[[ -n $out && -n $init ]] || { echo "build-image.sh: --out and --init are required" >&2; exit 2; }
[[ -f $init ]] || { echo "build-image.sh: init $init: No such file" >&2; exit 1; }
[[ $pvh -eq 0 || -n $kernel_dir ]] || { echo "build-image.sh: --pvh needs --kernel-dir (Debian's kernel has no PVH entry)" >&2; exit 2; }
cache=${cache:-$out/cache}
epoch=${SOURCE_DATE_EPOCH:-0}
tag="[uvm-image $(basename "$out")]"
say() { echo "$tag $*"; }
die() { echo "$tag error: $*" >&2; exit 1; }

mkdir -p "$out" "$cache/debs"
# One builder at a time per cache (parallel build dirs may share it).
exec 9>"$cache/.lock"
flock 9

# ---------------------------------------------------------------- kernel
# debian_kernel: sets kroot, release and vmlinuz from the Debian package.
debian_kernel() {
  # Resolves a metapackage (linux-image-cloud-amd64) to the concrete image
  # package and its candidate version; offline, falls back to the last
  # resolution recorded in the cache.
  resolved_file=$cache/resolved-$kernel_package
  concrete= version=
  if policy=$(apt-cache policy "$kernel_package" 2>/dev/null) && grep -q 'Candidate: [0-9]' <<<"$policy"; then
    concrete=$(apt-cache depends "$kernel_package" 2>/dev/null |
               awk '/Depends: linux-image-[0-9]/ {print $2; exit}')
    concrete=${concrete:-$kernel_package}
    version=$(apt-cache policy "$concrete" | awk '/Candidate:/ {print $2; exit}')
  fi
  if [[ -z $concrete || -z $version || $version == "(none)" ]]; then
    [[ -f $resolved_file ]] || die "cannot resolve $kernel_package: no apt lists (run apt-get update) and nothing cached in $cache"
    read -r concrete version <"$resolved_file"
    say "apt unavailable, using cached $concrete $version"
  fi
  echo "$concrete $version" >"$resolved_file"

  deb_version=${version//:/%3a}
  deb=$cache/debs/${concrete}_${deb_version}_amd64.deb
  if [[ ! -f $deb ]]; then
    say "downloading $concrete=$version"
    (cd "$cache/debs" && apt-get download -q "$concrete=$version" 2>&1 | grep -v '^W: Download is performed unsandboxed' || true)
    [[ -f $deb ]] || die "apt-get download $concrete=$version did not produce $deb"
  fi
  kroot=$cache/kernels/${concrete}_${deb_version}
  if [[ ! -f $kroot/.done ]]; then
    say "extracting $(basename "$deb")"
    rm -rf "$kroot"
    mkdir -p "$kroot"
    dpkg-deb -x "$deb" "$kroot"
    release=$(ls "$kroot/lib/modules")
    depmod -b "$kroot" "$release"
    touch "$kroot/.done"
  fi
  release=$(ls "$kroot/lib/modules")
  [[ $(wc -w <<<"$release") -eq 1 ]] || die "expected one kernel release in $kroot/lib/modules, found: $release"
  vmlinuz=$kroot/boot/vmlinuz-$release
  [[ -f $vmlinuz ]] || die "kernel $vmlinuz: No such file"
}
if [[ -n $kernel_dir ]]; then
  vmlinuz=$kernel_dir/vmlinuz
  [[ $pvh -eq 0 ]] || vmlinuz=$kernel_dir/vmlinux
  [[ -f $vmlinuz && -f $kernel_dir/kernel-release ]] || die "--kernel-dir $kernel_dir: no $(basename "$vmlinuz") and kernel-release"
  release=$(cat "$kernel_dir/kernel-release")
  modules= hyperv_modules= module_lists=()   # everything is built in
else
  debian_kernel
fi

# ---------------------------------------------------------------- staging
staging=$(mktemp -d "$out/.staging.XXXXXX")
trap 'rm -rf "$staging"' EXIT
for d in bin sbin usr/bin usr/sbin dev proc sys tmp run etc root mnt lib/modules; do
  mkdir -p "$staging/$d"
done
install -m 0755 "$init" "$staging/init"

# Modules: dependency order from modules.dep (modprobe --show-depends); a
# module built into this kernel yields no insmod line and is skipped. A module
# already listed (e.g. vsock for hv_sock) is not repeated.
declare -A seen=()
module_count=0
# write_load_order [--optional] LIST_FILE MODULES...
write_load_order() {
  local optional=
  [[ $1 == --optional ]] && { optional=1; shift; }
  local list=$1; shift
  local m lines verb path name
  : >"$list"
  for m in "$@"; do
    if ! lines=$(modprobe -d "$kroot" -S "$release" --show-depends "$m" 2>&1); then
      [[ -n $optional ]] || die "module $m: $lines"
      say "note: $release has no module $m (built in or absent): not in $(basename "$list")"
      continue
    fi
    while read -r verb path _; do
      [[ $verb == insmod ]] || continue
      name=$(basename "$path")
      [[ -n ${seen[$name]:-} ]] && continue
      seen[$name]=1
      install -m 0644 "$path" "$staging/lib/modules/$name"
      echo "/lib/modules/$name" >>"$list"
      module_count=$((module_count + 1))
    done <<<"$lines"
  done
}
# shellcheck disable=SC2086 # word lists
write_load_order "$staging/lib/modules/load-order" $modules
# The other lists are loaded only on top of the main one: each repeats
# nothing the main list loads, but carries all else it needs (scsi_mod for
# virtio_scsi even if the Hyper-V list has it too).
declare -A main_seen=()
for name in "${!seen[@]}"; do main_seen[$name]=1; done
reset_seen() { seen=(); for name in "${!main_seen[@]}"; do seen[$name]=1; done; }
if [[ -n $hyperv_modules ]]; then
  reset_seen
  # shellcheck disable=SC2086
  write_load_order "$staging/lib/modules/load-order.hyperv" $hyperv_modules
fi
for entry in "${module_lists[@]}"; do
  list_name=${entry%%=*}
  [[ $list_name =~ ^[a-z0-9]+$ && $entry == *=* ]] || die "--module-list $entry: expected NAME=\"m1 m2\""
  reset_seen
  # shellcheck disable=SC2086
  write_load_order --optional "$staging/lib/modules/load-order.$list_name" ${entry#*=}
done
echo "$release" >"$staging/lib/modules/kernel-release"
say "kernel $release, $module_count modules"

# busybox_root: where busybox goes (a staging tree of its own when it gets an
# archive of its own; its directories are created in both, the main one wins).
busybox_root=$staging
if [[ -n $busybox && -n $busybox_compression && $busybox_compression != "$compression" ]]; then
  busybox_root=$(mktemp -d "$out/.staging-busybox.XXXXXX")
  trap 'rm -rf "$staging" "$busybox_root"' EXIT
fi
if [[ -n $busybox ]]; then
  file -L "$busybox" | grep -q 'statically linked' || die "busybox $busybox is not statically linked"
  mkdir -p "$busybox_root/bin"
  install -m 0755 "$busybox" "$busybox_root/bin/busybox"
  while read -r applet; do
    [[ -e $staging/$applet || -L $staging/$applet || -e $busybox_root/$applet || -L $busybox_root/$applet ]] && continue
    mkdir -p "$busybox_root/$(dirname "$applet")"
    ln -s /bin/busybox "$busybox_root/$applet"
  done < <("$busybox" --list-full)
  printf 'root:x:0:0:root:/root:/bin/sh\n' >"$staging/etc/passwd"
  printf 'root:x:0:\n' >"$staging/etc/group"
fi

# A dynamically linked init brings its shared libraries (and the loader).
if ! file -L "$init" | grep -q 'statically linked'; then
  say "init is dynamically linked: adding its shared libraries"
  while read -r lib; do
    [[ -f $lib ]] || continue
    mkdir -p "$staging/$(dirname "$lib")"
    cp -L "$lib" "$staging/$lib"
  done < <(ldd "$init" | awk '/=> \// {print $3} /^\s*\/[^ ]+ \(0x/ {print $1}')
fi

for e in "${extras[@]}"; do
  src=${e%%=*} dst=${e#*=}
  mkdir -p "$staging/$(dirname "$dst")"
  cp -L "$src" "$staging/$dst"
done

# Normalise what the archive records: modes, then mtimes (symlinks too).
for root in "$staging" "$busybox_root"; do
  find "$root" -type d -exec chmod 0755 {} +
  find "$root" -type f -perm /111 -exec chmod 0755 {} +
  find "$root" -type f ! -perm /111 -exec chmod 0644 {} +
  find "$root" -exec touch -h -d "@$epoch" {} +
done

# ---------------------------------------------------------------- archive
# compressor NAME: sets compress=(...). lz4 -12 (HC) costs nothing to unpack:
# lz4's decoding speed does not depend on the level (0.3% smaller than -9).
compressor() {
  case $1 in
    zstd) compress=(zstd -q -19 -T1 --no-progress -c) ;;
    gzip) compress=(gzip -9 -n -c) ;;
    lz4) compress=(lz4 -q -l -12 -c) ;;  # the kernel reads the legacy format
    # --x86: the branch filter for executables (busybox: 836 KB instead of 878).
    xz) compress=(xz -q --check=crc32 --x86 --lzma2=preset=9,dict=8MiB -T1 -c) ;;
    none) compress=(cat) ;;
    *) die "unknown compression $1" ;;
  esac
}
# pack ROOT COMPRESSION: the tree as a newc cpio, compressed, on stdout.
pack() {
  local compress
  compressor "$2"
  (cd "$1" && find . -mindepth 1 -printf '%P\n' | sort |
     cpio -o -H newc --reproducible --owner=0:0 --quiet) | "${compress[@]}"
}
tmp_initrd=$out/.initrd.img.tmp
if [[ $busybox_root != "$staging" ]]; then
  say "packing initrd ($compression, busybox $busybox_compression)"
  # busybox's archive first: an LZ4 legacy stream has no end marker, so the
  # kernel would read the next archive's first bytes as another LZ4 block
  # ("chunk length is longer than allocated") and drop that archive; an xz or
  # zstd stream ends where it says.
  { pack "$busybox_root" "$busybox_compression" && pack "$staging" "$compression"; } >"$tmp_initrd"
else
  say "packing initrd ($compression)"
  pack "$staging" "$compression" >"$tmp_initrd"
fi
mv -f "$tmp_initrd" "$out/initrd.img"
if [[ $pvh -eq 1 ]]; then
  # Symbols are not needed to boot (a third of the file).
  strip --strip-all -o "$out/.vmlinuz.tmp" "$vmlinuz" && chmod 0644 "$out/.vmlinuz.tmp"
  mv -f "$out/.vmlinuz.tmp" "$out/vmlinuz"
else
  # Copied beside and renamed: a QEMU starting meanwhile reads the old file
  # or the new one, never a part (a cut kernel ends the boot silently).
  install -m 0644 "$vmlinuz" "$out/.vmlinuz.tmp"
  mv -f "$out/.vmlinuz.tmp" "$out/vmlinuz"
fi
touch -d "@$epoch" "$out/vmlinuz"
echo "$release" >"$out/kernel-release"
size=$(stat -c %s "$out/initrd.img")
say "initrd.img $size bytes ($(( (size + 1023) / 1024 )) KiB), vmlinuz $(stat -c %s "$out/vmlinuz") bytes -> $out"
