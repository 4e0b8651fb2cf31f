#!/usr/bin/env bash
# Where a process's resident memory is, to tell a leak from allocator growth:
#   memory-breakdown.sh PID [--malloc-info FILE]
# prints one line:
#   rss_kib=N heap_kib=N arena_kib=N arenas=N other_anon_kib=N file_kib=N threads=N fds=N
# heap = the main arena ([heap]); arena = glibc's per-thread arenas (the 64 MiB
# reserved regions threads get their own malloc heap in); other_anon = the rest
# of anonymous memory (thread stacks, mmap()ed blocks); file = mapped files.
# --malloc-info FILE also writes glibc's malloc_info(3) XML (free and used bytes
# per arena) into FILE, through gdb (the process is paused for a moment).
set -euo pipefail
pid=${1:?usage: memory-breakdown.sh PID [--malloc-info FILE]}
shift
info_file=""
[[ ${1:-} == --malloc-info ]] && info_file=${2:?--malloc-info needs a file}
[[ -r /proc/$pid/smaps ]] || { echo "memory-breakdown: no process $pid" >&2; exit 2; }

awk '
  # A mapping header: "start-end perms offset dev inode [path]".
  /^[0-9a-f]+-[0-9a-f]+ / {
    path = $6; perms = $2
    kind = (path == "[heap]") ? "heap" : ((path == "" || path ~ /^\[/) ? "anon" : "file")
    next
  }
  # A thread arena reserves 64 MiB at once (rw part + a ---p rest of over 1 MiB).
  /^Size:/ { if (path == "" && perms == "---p" && $2 >= 1024) arenas++ }
  /^Rss:/ { rss[kind] += $2; total += $2 }
  END {
    printf "rss_kib=%d heap_kib=%d other_anon_kib=%d file_kib=%d arena_reservations=%d",
           total, rss["heap"], rss["anon"], rss["file"], arenas
  }' "/proc/$pid/smaps"
printf ' threads=%s fds=%s\n' "$(ls "/proc/$pid/task" | wc -l)" "$(ls "/proc/$pid/fd" | wc -l)"

if [[ -n $info_file ]]; then
  # gdb calls into the process: malloc_info(0, fopen(FILE)), then fclose.
  gdb -nx -batch -p "$pid" \
    -ex "set \$f = (void *) fopen(\"$info_file\", \"w\")" \
    -ex 'call (int) malloc_info(0, $f)' \
    -ex 'call (int) fclose($f)' >/dev/null 2>&1 || { echo "memory-breakdown: gdb failed" >&2; exit 1; }
  # Summary: per heap, the bytes in use ("total type=rest" minus free) and free.
  awk '
    /<heap nr=/ { match($0, /nr="[0-9]+"/); h = substr($0, RSTART + 4, RLENGTH - 5) }
    /<system type="current"/ { match($0, /size="[0-9]+"/); cur[h] = substr($0, RSTART + 6, RLENGTH - 7) }
    /<total type="rest"/ { match($0, /size="[0-9]+"/); free[h] += substr($0, RSTART + 6, RLENGTH - 7) }
    /<total type="fast"/ { match($0, /size="[0-9]+"/); free[h] += substr($0, RSTART + 6, RLENGTH - 7) }
    /^<\/heap>/ { heaps++ }
    END { for (k in cur) printf "malloc heap %s: system %d KiB, free %d KiB\n", k, cur[k] / 1024, free[k] / 1024 }
  ' "$info_file" | sort -t' ' -k3 -n
fi
