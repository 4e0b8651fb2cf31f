#!/usr/bin/env python3
"""Sums a GNU ld / lld link map by component (the archive each input section
came from), so the agent's size can be attributed: gRPC, protobuf, libc, ours.

usage: link-map-by-component.py MAP [--sections .text,.rodata,...]
Prints bytes per component, largest first, for the allocated output sections
(or only the ones named)."""
import collections
import re
import sys

# Archive file name -> component shown in the report.
COMPONENTS = [
    (r"libgrpc|libgpr|libupb|libaddress_sorting|libcares|libre2", "gRPC (+upb, c-ares, re2)"),
    (r"libprotobuf", "protobuf"),
    (r"libabsl_", "abseil"),
    (r"libc\.a|libm\.a|libpthread|librt|libdl|rcrt1|crt[1in]|libc_nonshared", "glibc"),
    (r"libstdc\+\+|libsupc\+\+|libgcc", "libstdc++/libgcc"),
    (r"libseccomp", "libseccomp"),
    (r"libz\.a", "zlib"),
    (r"libuvmshim_agent_proto|agent(\.grpc)?\.pb\.cc\.o", "ours: generated proto"),
    (r"libuvmshim|uvm-agent-static\.dir|main\.cc\.o", "ours: agent"),
]


def component(path):
    for pattern, name in COMPONENTS:
        if re.search(pattern, path):
            return name
    return "other: " + path.rsplit("/", 1)[-1].split("(")[0]


def parse(map_path, wanted):
    totals = collections.Counter()
    output_section = None
    pending = None  # an input section name on its own line (long names wrap)
    in_memory_map = False
    for line in open(map_path, errors="replace"):
        if line.startswith("Linker script and memory map"):
            in_memory_map = True
            continue
        if not in_memory_map:
            continue
        m = re.match(r"^(\.[\w.]+)\s+0x[0-9a-f]+\s+0x[0-9a-f]+", line)
        if m or re.match(r"^(\.[\w.]+)\s*$", line):
            output_section = (m or re.match(r"^(\.[\w.]+)", line)).group(1)
            continue
        m = re.match(r"^ (\S+)\s*$", line)
        if m:
            pending = m.group(1)
            continue
        m = re.match(r"^ (\S+)?\s+0x([0-9a-f]+)\s+0x([0-9a-f]+)\s+(\S.*)$", line)
        if m and output_section and (m.group(1) or pending):
            size = int(m.group(3), 16)
            if size and (not wanted or output_section in wanted):
                totals[component(m.group(4).strip())] += size
        pending = None
    return totals


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    wanted = set()
    if len(sys.argv) > 3 and sys.argv[2] == "--sections":
        wanted = set(sys.argv[3].split(","))
    totals = parse(sys.argv[1], wanted)
    total = sum(totals.values())
    for name, size in totals.most_common():
        print(f"{size / 1e6:8.2f} MB  {100 * size / total:5.1f} %  {name}")
    print(f"{total / 1e6:8.2f} MB  total")


if __name__ == "__main__":
    main()
