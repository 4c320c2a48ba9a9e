#include "nn/layers.h"

namespace vlm::nn {

Expected<Linear> Linear::bind(const WeightStore& ws, const std::string& prefix, int64_t out, int64_t in,
                              bool bias) {
  Linear l;
  l.in = in;
  l.out = out;
  VLM_ASSIGN_OR_RETURN(l.w, ws.get(prefix + ".weight", {out, in}));
  if (bias) {
    VLM_ASSIGN_OR_RETURN(l.b, ws.get(prefix + ".bias", {out}));
  }
  return l;
}

Expected<Norm> Norm::bind(const WeightStore& ws, const std::string& prefix, Kind kind, int64_t dim, float eps) {
  Norm n;
  n.kind = kind;
  n.dim = dim;
  n.eps = eps;
  VLM_ASSIGN_OR_RETURN(n.w, ws.get(prefix + ".weight", {dim}));
  if (kind == Kind::Layer) {
    VLM_ASSIGN_OR_RETURN(n.b, ws.get(prefix + ".bias", {dim}));
  }
  return n;
}

}  // namespace vlm::nn
