// Change provenance (docs/gitops.md, "Change provenance"): for a plan of a
// configuration from git, the commits that caused each planned change.
//
// The boundary is the commit the workspace last applied from the same
// repository and path (the state's serials record it), else at most
// kMaxCommits back. For a create, update or replace the lines of the
// resource's block and of the module blocks that instantiate it are
// blamed at the planned commit (libgit2 blame, one per file, cached per
// blob under the git cache): the commits after the boundary that last
// changed any of them are its causes. An instance deleted while its block
// remains (a lower count) is traced through that block; a resource whose
// block is gone is traced through the diffs after the boundary, to the last
// commit that removed its block's header line (or the header of a module
// block holding it), since blame cannot see removed lines. A change with no
// cause after the boundary (drift, a variable, a provider default) gets
// none. Errors never fail the plan: they are one note on stderr.
#pragma once

#include <cstddef>
#include <string>

#include "cli/commands.h"
#include "runtime/engine/engine.h"

namespace plinth::cli {

struct ProvenanceStats {
  size_t traced = 0;        // changes given at least one cause
  size_t changes = 0;       // changes looked at
  size_t files_blamed = 0;  // blames computed
  size_t files_cached = 0;  // blames read from the cache
  double ms = 0;
  std::string boundary;  // the commit blame stopped at ("" none)
};

// Fills caused_by of `plan`'s changes; `sources` are the plan's.
ProvenanceStats TraceProvenance(const Options& o, runtime::Plan& plan, const SourceManager& sources);

// TraceProvenance, then its figures on stderr ("Provenance: 31 of 31
// changes traced to commits after 8e0c55a1b2d9 (...) in 3 ms").
void TraceAndReport(const Options& o, runtime::Plan& plan, const SourceManager& sources);

}  // namespace plinth::cli
