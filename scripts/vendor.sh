#!/usr/bin/env bash
# Refresh the dashboard's JavaScript libraries (src/herd/server/static/vendor) from npm.
#
# The dashboard never loads anything from a CDN (sites are often offline): the minified ES
# modules are committed with their licences and the versions below (VERSIONS.txt). To move to a
# newer release, change a version here, run this script, check the page (tests/integration/
# test_dashboard.py), and commit the result. Needs npm; nothing else runs at install time.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
OUT="$ROOT/src/herd/server/static/vendor"
CYTOSCAPE=3.35.0       # graph drawing (MIT)
CYTOSCAPE_DAGRE=4.0.1  # layered layout for cytoscape, bundles @dagrejs/dagre (MIT)
DAGRE=3.1.3            # only for its licence text: cytoscape-dagre bundles it
ECHARTS=6.1.0          # Gantt and usage charts, bundles zrender and tslib (Apache-2.0)

command -v npm >/dev/null || { echo "vendor.sh: npm not found: apt-get install npm" >&2; exit 1; }
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
(cd "$WORK" && npm install --no-save --ignore-scripts --no-audit --no-fund --silent \
  "cytoscape@$CYTOSCAPE" "cytoscape-dagre@$CYTOSCAPE_DAGRE" "@dagrejs/dagre@$DAGRE" "echarts@$ECHARTS")
M="$WORK/node_modules"
rm -rf "$OUT" && mkdir -p "$OUT/licenses"
cp "$M/cytoscape/dist/cytoscape.esm.min.mjs" "$OUT/cytoscape.mjs"
# the source-map comment would make browsers ask for a file we do not ship
sed '/sourceMappingURL/d' "$M/cytoscape-dagre/dist/cytoscape-dagre.min.mjs" > "$OUT/cytoscape-dagre.mjs"
sed '/sourceMappingURL/d' "$M/echarts/dist/echarts.esm.min.mjs" > "$OUT/echarts.mjs"
cp "$M/cytoscape/LICENSE" "$OUT/licenses/cytoscape.LICENSE"
cp "$M/cytoscape-dagre/LICENSE" "$OUT/licenses/cytoscape-dagre.LICENSE"
cp "$M/@dagrejs/dagre/LICENSE" "$OUT/licenses/dagre.LICENSE"
cp "$M/echarts/LICENSE" "$OUT/licenses/echarts.LICENSE"
cp "$M/echarts/NOTICE" "$OUT/licenses/echarts.NOTICE"
cp "$M/zrender/LICENSE" "$OUT/licenses/zrender.LICENSE"
cp "$M/tslib/LICENSE.txt" "$OUT/licenses/tslib.LICENSE"
{
  echo "# The dashboard's vendored libraries (refresh: scripts/vendor.sh). name version licence file"
  echo "cytoscape $CYTOSCAPE MIT cytoscape.mjs"
  echo "cytoscape-dagre $CYTOSCAPE_DAGRE MIT cytoscape-dagre.mjs (bundles @dagrejs/dagre, MIT)"
  echo "echarts $ECHARTS Apache-2.0 echarts.mjs (bundles zrender $(node -p "require('$M/zrender/package.json').version") BSD-3-Clause, tslib $(node -p "require('$M/tslib/package.json').version") 0BSD)"
} > "$OUT/VERSIONS.txt"
ls -l "$OUT"
