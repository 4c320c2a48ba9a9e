#include "nn/layers.h"

namespace vlm::nn {

Expected<Linear> Linear::from_view(const TensorView& w, const std::string& format) {
  ops::LinearFormat f;
  if (!ops::parse_linear_format(format, &f))
    return make_error("unknown weight format '", format, "' (expected native, bf16, q8 or q4)");
  if (w.ndim != 2) return make_error("linear weight must be 2-d, is ", w.shape_str());
  Linear l;
  l.w = w;
  l.out = w.dim(0);
  l.in = w.dim(1);
  if (f != ops::LinearFormat::Native) l.packed = ops::pack_weight(w, f);
  return l;
}

Expected<Linear> Linear::bind(const WeightStore& ws, const std::string& prefix, int64_t out, int64_t in,
                              bool bias) {
  TensorView w;
  VLM_ASSIGN_OR_RETURN(w, ws.get(prefix + ".weight", {out, in}));
  VLM_ASSIGN_OR_RETURN(Linear l, from_view(w, ws.linear_format));
  if (l.packed && l.packed->data.data()) ws.release(w);  // computed from its own copy from now on
  if (bias) {
    VLM_ASSIGN_OR_RETURN(l.b, ws.get(prefix + ".bias", {out}));
  }
  return l;
}

void run_linears(const float* x, int64_t M, std::initializer_list<std::pair<const Linear*, float*>> layers) {
  ops::LinearJob jobs[8];
  int n = 0;
  int64_t in = -1;
  for (const auto& [l, y] : layers) {
    if (n == 8 || (in >= 0 && l->in != in)) {  // not one group: plain calls
      for (const auto& [l2, y2] : layers) (*l2)(x, M, y2);
      return;
    }
    in = l->in;
    jobs[n++] = ops::LinearJob{l->packed.get(), &l->w, l->b.data ? &l->b : nullptr, y};
  }
  ops::linear_group(x, M, in, jobs, n);
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
