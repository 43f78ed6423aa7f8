// Slurm hostlist expressions (docs/providers/slurm.md): what slurmctld passes
// to ResumeProgram / SuspendProgram / ResumeFailProgram and prints in squeue's
// node lists. Plinth expands and compresses them itself, without scontrol.
//
// Syntax: comma-separated items; an item is a name with zero or more
// bracketed ranges, e.g. "gpu[1-3,5],cpu1", "n[01-10]" (zero padding: every
// number of a range is printed with the width of the range's first bound when
// that bound has a leading zero), "rack[1-2]-n[1-2]" (several brackets: the
// cartesian product, leftmost varying slowest). A range is N or N-M (M >= N).
// Commas inside brackets separate ranges, outside them items. Whitespace
// around items is ignored; empty items are skipped.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace plinth::slurm {

// The host names of `expr`, in order (duplicates kept). At most `limit`
// names: a bigger expansion is an error, as is a malformed expression. On
// error: nullopt and *error says what is wrong, e.g.
// "hostlist 'gpu[3-1]': range 3-1 ends before it starts: write LOW-HIGH".
std::optional<std::vector<std::string>> ExpandHostlist(std::string_view expr, std::string* error,
                                                       size_t limit = 65536);

// The inverse: names sharing a prefix and a numeric suffix of the same width
// (or unpadded numbers) become one bracketed item with merged ranges, in order
// of first appearance of each prefix; duplicates are dropped. Names without a
// numeric suffix stay as they are. ExpandHostlist(CompressHostlist(names))
// gives the same set of names. {"gpu1","gpu2","gpu3","gpu5","cpu1"} ->
// "gpu[1-3,5],cpu1"; {"n01","n02"} -> "n[01-02]"; {"a1"} -> "a1".
std::string CompressHostlist(const std::vector<std::string>& names);

}  // namespace plinth::slurm
