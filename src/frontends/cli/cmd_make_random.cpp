// `vlm make-random`: a checkpoint folder with a real model's shapes, tensor names, shard layout and
// configs, and random bf16 weights — for benchmarks, without downloading a model.
#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/tensor.h"
#include "core/threads.h"
#include "frontends/cli/commands.h"

namespace vlm::cli {
namespace {

namespace fs = std::filesystem;
using ojson = nlohmann::ordered_json;

enum class Init { Normal, Ones, Zeros };
struct Tensor {
  std::string name;
  std::vector<int64_t> shape;
  Init init = Init::Normal;
  int64_t numel() const {
    int64_t n = 1;
    for (int64_t d : shape) n *= d;
    return n;
  }
};

struct Spec {
  ojson config;
  std::vector<Tensor> tensors;
  int shards = 1;
  std::string assets;           // bundled folder whose tokenizer/template files are copied
  std::vector<std::string> copy;  // file names copied from it
  std::vector<std::pair<std::string, ojson>> extra;  // other files written as JSON
};

void add(Spec& s, const std::string& name, std::vector<int64_t> shape, Init init = Init::Normal) {
  s.tensors.push_back({name, std::move(shape), init});
}

// Decoder layers of the Qwen2/Qwen3/Llama text models.
void add_decoder(Spec& s, const std::string& p, int layers, int64_t D, int64_t I, int64_t H, int64_t KV, int64_t hd,
                 bool qkv_bias, bool qk_norm) {
  for (int i = 0; i < layers; ++i) {
    const std::string l = p + "layers." + std::to_string(i) + ".";
    add(s, l + "input_layernorm.weight", {D}, Init::Ones);
    add(s, l + "post_attention_layernorm.weight", {D}, Init::Ones);
    add(s, l + "self_attn.q_proj.weight", {H * hd, D});
    add(s, l + "self_attn.k_proj.weight", {KV * hd, D});
    add(s, l + "self_attn.v_proj.weight", {KV * hd, D});
    add(s, l + "self_attn.o_proj.weight", {D, H * hd});
    if (qkv_bias) {
      add(s, l + "self_attn.q_proj.bias", {H * hd});
      add(s, l + "self_attn.k_proj.bias", {KV * hd});
      add(s, l + "self_attn.v_proj.bias", {KV * hd});
    }
    if (qk_norm) {
      add(s, l + "self_attn.q_norm.weight", {hd}, Init::Ones);
      add(s, l + "self_attn.k_norm.weight", {hd}, Init::Ones);
    }
    add(s, l + "mlp.gate_proj.weight", {I, D});
    add(s, l + "mlp.up_proj.weight", {I, D});
    add(s, l + "mlp.down_proj.weight", {D, I});
  }
  add(s, p + "norm.weight", {D}, Init::Ones);
}

ojson qwen2_vl_config(int64_t D, int64_t I, int layers, int H, int KV, int64_t vocab, bool tied) {
  return ojson{{"architectures", {"Qwen2VLForConditionalGeneration"}},
               {"attention_dropout", 0.0},
               {"bos_token_id", 151643},
               {"eos_token_id", 151645},
               {"vision_start_token_id", 151652},
               {"vision_end_token_id", 151653},
               {"vision_token_id", 151654},
               {"image_token_id", 151655},
               {"video_token_id", 151656},
               {"hidden_act", "silu"},
               {"hidden_size", D},
               {"initializer_range", 0.02},
               {"intermediate_size", I},
               {"max_position_embeddings", 32768},
               {"max_window_layers", layers},
               {"model_type", "qwen2_vl"},
               {"num_attention_heads", H},
               {"num_hidden_layers", layers},
               {"num_key_value_heads", KV},
               {"rms_norm_eps", 1e-6},
               {"rope_theta", 1000000.0},
               {"sliding_window", 32768},
               {"tie_word_embeddings", tied},
               {"torch_dtype", "bfloat16"},
               {"transformers_version", "4.41.2"},
               {"use_cache", true},
               {"use_sliding_window", false},
               {"vision_config",
                {{"depth", 32},
                 {"embed_dim", 1280},
                 {"mlp_ratio", 4},
                 {"num_heads", 16},
                 {"in_chans", 3},
                 {"hidden_size", D},
                 {"patch_size", 14},
                 {"spatial_merge_size", 2},
                 {"spatial_patch_size", 14},
                 {"temporal_patch_size", 2}}},
               {"rope_scaling", {{"type", "mrope"}, {"mrope_section", {16, 24, 24}}}},
               {"vocab_size", vocab}};
}

Spec qwen2_vl(const std::string& assets, bool seven_b) {
  Spec s;
  const int64_t D = seven_b ? 3584 : 1536, I = seven_b ? 18944 : 8960, vocab = seven_b ? 152064 : 151936;
  const int layers = 28, H = seven_b ? 28 : 12, KV = seven_b ? 4 : 2;
  s.config = qwen2_vl_config(D, I, layers, H, KV, vocab, !seven_b);
  s.shards = seven_b ? 5 : 2;
  add(s, "model.embed_tokens.weight", {vocab, D});
  add_decoder(s, "model.", layers, D, I, H, KV, D / H, true, false);
  if (seven_b) add(s, "lm_head.weight", {vocab, D});
  const int64_t E = 1280;
  add(s, "visual.patch_embed.proj.weight", {E, 3, 2, 14, 14});
  for (int b = 0; b < 32; ++b) {
    const std::string p = "visual.blocks." + std::to_string(b) + ".";
    add(s, p + "norm1.weight", {E}, Init::Ones);
    add(s, p + "norm1.bias", {E}, Init::Zeros);
    add(s, p + "norm2.weight", {E}, Init::Ones);
    add(s, p + "norm2.bias", {E}, Init::Zeros);
    add(s, p + "attn.qkv.weight", {3 * E, E});
    add(s, p + "attn.qkv.bias", {3 * E});
    add(s, p + "attn.proj.weight", {E, E});
    add(s, p + "attn.proj.bias", {E});
    add(s, p + "mlp.fc1.weight", {4 * E, E});
    add(s, p + "mlp.fc1.bias", {4 * E});
    add(s, p + "mlp.fc2.weight", {E, 4 * E});
    add(s, p + "mlp.fc2.bias", {E});
  }
  add(s, "visual.merger.ln_q.weight", {E}, Init::Ones);
  add(s, "visual.merger.ln_q.bias", {E}, Init::Zeros);
  add(s, "visual.merger.mlp.0.weight", {4 * E, 4 * E});
  add(s, "visual.merger.mlp.0.bias", {4 * E});
  add(s, "visual.merger.mlp.2.weight", {D, 4 * E});
  add(s, "visual.merger.mlp.2.bias", {D});
  s.assets = assets + "/fixtures/qwen2_vl/model";
  s.copy = {"tokenizer.json", "tokenizer_config.json", "chat_template.json", "generation_config.json",
            "preprocessor_config.json"};
  return s;
}

Spec qwen25_vl_3b(const std::string& assets) {
  Spec s;
  const int64_t D = 2048, I = 11008, vocab = 151936, E = 1280, VI = 3420;
  const int layers = 36, H = 16, KV = 2;
  s.config = qwen2_vl_config(D, I, layers, H, KV, vocab, true);
  s.config["architectures"] = {"Qwen2_5_VLForConditionalGeneration"};
  s.config["model_type"] = "qwen2_5_vl";
  s.config["max_position_embeddings"] = 128000;
  s.config["transformers_version"] = "4.49.0.dev0";
  s.config["vision_config"] = ojson{{"depth", 32},
                                    {"hidden_act", "silu"},
                                    {"hidden_size", E},
                                    {"intermediate_size", VI},
                                    {"num_heads", 16},
                                    {"in_chans", 3},
                                    {"out_hidden_size", D},
                                    {"patch_size", 14},
                                    {"spatial_merge_size", 2},
                                    {"spatial_patch_size", 14},
                                    {"window_size", 112},
                                    {"fullatt_block_indexes", {7, 15, 23, 31}},
                                    {"tokens_per_second", 2},
                                    {"temporal_patch_size", 2}};
  s.shards = 2;
  add(s, "model.embed_tokens.weight", {vocab, D});
  add_decoder(s, "model.", layers, D, I, H, KV, D / H, true, false);
  add(s, "visual.patch_embed.proj.weight", {E, 3, 2, 14, 14});
  for (int b = 0; b < 32; ++b) {
    const std::string p = "visual.blocks." + std::to_string(b) + ".";
    add(s, p + "norm1.weight", {E}, Init::Ones);
    add(s, p + "norm2.weight", {E}, Init::Ones);
    add(s, p + "attn.qkv.weight", {3 * E, E});
    add(s, p + "attn.qkv.bias", {3 * E});
    add(s, p + "attn.proj.weight", {E, E});
    add(s, p + "attn.proj.bias", {E});
    add(s, p + "mlp.gate_proj.weight", {VI, E});
    add(s, p + "mlp.gate_proj.bias", {VI});
    add(s, p + "mlp.up_proj.weight", {VI, E});
    add(s, p + "mlp.up_proj.bias", {VI});
    add(s, p + "mlp.down_proj.weight", {E, VI});
    add(s, p + "mlp.down_proj.bias", {E});
  }
  add(s, "visual.merger.ln_q.weight", {E}, Init::Ones);
  add(s, "visual.merger.mlp.0.weight", {4 * E, 4 * E});
  add(s, "visual.merger.mlp.0.bias", {4 * E});
  add(s, "visual.merger.mlp.2.weight", {D, 4 * E});
  add(s, "visual.merger.mlp.2.bias", {D});
  s.assets = assets + "/fixtures/qwen2_5_vl/model";
  s.copy = {"tokenizer.json", "tokenizer_config.json", "chat_template.json", "generation_config.json",
            "preprocessor_config.json"};
  return s;
}

Spec qwen3_vl_2b(const std::string& assets) {
  Spec s;
  const int64_t D = 2048, I = 6144, vocab = 151936, hd = 128, E = 1024, VI = 4096, out = 2048;
  const int layers = 28, H = 16, KV = 8, depth = 24;
  s.config = ojson{
      {"architectures", {"Qwen3VLForConditionalGeneration"}},
      {"image_token_id", 151655},
      {"model_type", "qwen3_vl"},
      {"text_config",
       {{"attention_bias", false},
        {"attention_dropout", 0.0},
        {"bos_token_id", 151643},
        {"dtype", "bfloat16"},
        {"eos_token_id", 151645},
        {"head_dim", hd},
        {"hidden_act", "silu"},
        {"hidden_size", D},
        {"initializer_range", 0.02},
        {"intermediate_size", I},
        {"max_position_embeddings", 262144},
        {"model_type", "qwen3_vl_text"},
        {"num_attention_heads", H},
        {"num_hidden_layers", layers},
        {"num_key_value_heads", KV},
        {"rms_norm_eps", 1e-6},
        {"rope_scaling", {{"mrope_interleaved", true}, {"mrope_section", {24, 20, 20}}, {"rope_type", "default"}}},
        {"rope_theta", 5000000},
        {"tie_word_embeddings", true},
        {"use_cache", true},
        {"vocab_size", vocab}}},
      {"tie_word_embeddings", true},
      {"transformers_version", "4.57.0.dev0"},
      {"video_token_id", 151656},
      {"vision_config",
       {{"deepstack_visual_indexes", {5, 11, 17}},
        {"depth", depth},
        {"hidden_act", "gelu_pytorch_tanh"},
        {"hidden_size", E},
        {"in_channels", 3},
        {"initializer_range", 0.02},
        {"intermediate_size", VI},
        {"model_type", "qwen3_vl"},
        {"num_heads", 16},
        {"num_position_embeddings", 2304},
        {"out_hidden_size", out},
        {"patch_size", 16},
        {"spatial_merge_size", 2},
        {"temporal_patch_size", 2}}},
      {"vision_end_token_id", 151653},
      {"vision_start_token_id", 151652}};
  s.shards = 1;
  add(s, "model.language_model.embed_tokens.weight", {vocab, D});
  add_decoder(s, "model.language_model.", layers, D, I, H, KV, hd, false, true);
  add(s, "model.visual.patch_embed.proj.weight", {E, 3, 2, 16, 16});
  add(s, "model.visual.patch_embed.proj.bias", {E});
  add(s, "model.visual.pos_embed.weight", {2304, E});
  for (int b = 0; b < depth; ++b) {
    const std::string p = "model.visual.blocks." + std::to_string(b) + ".";
    add(s, p + "norm1.weight", {E}, Init::Ones);
    add(s, p + "norm1.bias", {E}, Init::Zeros);
    add(s, p + "norm2.weight", {E}, Init::Ones);
    add(s, p + "norm2.bias", {E}, Init::Zeros);
    add(s, p + "attn.qkv.weight", {3 * E, E});
    add(s, p + "attn.qkv.bias", {3 * E});
    add(s, p + "attn.proj.weight", {E, E});
    add(s, p + "attn.proj.bias", {E});
    add(s, p + "mlp.linear_fc1.weight", {VI, E});
    add(s, p + "mlp.linear_fc1.bias", {VI});
    add(s, p + "mlp.linear_fc2.weight", {E, VI});
    add(s, p + "mlp.linear_fc2.bias", {E});
  }
  auto merger = [&](const std::string& p, int64_t norm_dim) {
    add(s, p + "norm.weight", {norm_dim}, Init::Ones);
    add(s, p + "norm.bias", {norm_dim}, Init::Zeros);
    add(s, p + "linear_fc1.weight", {4 * E, 4 * E});
    add(s, p + "linear_fc1.bias", {4 * E});
    add(s, p + "linear_fc2.weight", {out, 4 * E});
    add(s, p + "linear_fc2.bias", {out});
  };
  merger("model.visual.merger.", E);
  for (int i = 0; i < 3; ++i) merger("model.visual.deepstack_merger_list." + std::to_string(i) + ".", 4 * E);
  // Qwen3-VL ships its own chat template; the bundled Qwen2-VL tokenizer and template stand in.
  s.assets = assets + "/fixtures/qwen2_vl/model";
  s.copy = {"tokenizer.json", "tokenizer_config.json", "chat_template.json", "generation_config.json"};
  s.extra.push_back({"preprocessor_config.json",
                     ojson{{"crop_size", nullptr},
                           {"do_convert_rgb", true},
                           {"do_normalize", true},
                           {"do_rescale", true},
                           {"do_resize", true},
                           {"image_mean", {0.5, 0.5, 0.5}},
                           {"image_processor_type", "Qwen2VLImageProcessorFast"},
                           {"image_std", {0.5, 0.5, 0.5}},
                           {"merge_size", 2},
                           {"patch_size", 16},
                           {"processor_class", "Qwen3VLProcessor"},
                           {"resample", 3},
                           {"rescale_factor", 0.00392156862745098},
                           {"size", {{"longest_edge", 16777216}, {"shortest_edge", 65536}}},
                           {"temporal_patch_size", 2}}});
  return s;
}

Spec llava15_7b(const std::string& assets) {
  Spec s;
  const int64_t D = 4096, I = 11008, vocab = 32064, E = 1024, VI = 4096;
  const int layers = 32, H = 32, depth = 24;
  s.config = ojson{{"architectures", {"LlavaForConditionalGeneration"}},
                   {"ignore_index", -100},
                   {"image_token_index", 32000},
                   {"model_type", "llava"},
                   {"pad_token_id", 32001},
                   {"projector_hidden_act", "gelu"},
                   {"text_config",
                    {{"_name_or_path", "lmsys/vicuna-7b-v1.5"},
                     {"architectures", {"LlamaForCausalLM"}},
                     {"max_position_embeddings", 4096},
                     {"model_type", "llama"},
                     {"rms_norm_eps", 1e-05},
                     {"torch_dtype", "float16"},
                     {"vocab_size", vocab}}},
                   {"tie_word_embeddings", false},
                   {"torch_dtype", "bfloat16"},
                   {"transformers_version", "4.36.0.dev0"},
                   {"vision_config",
                    {{"hidden_size", E},
                     {"image_size", 336},
                     {"intermediate_size", VI},
                     {"model_type", "clip_vision_model"},
                     {"num_attention_heads", 16},
                     {"num_hidden_layers", depth},
                     {"patch_size", 14},
                     {"projection_dim", 768},
                     {"vocab_size", 32000}}},
                   {"vision_feature_layer", -2},
                   {"vision_feature_select_strategy", "default"},
                   {"vocab_size", vocab}};
  s.shards = 3;
  add(s, "language_model.model.embed_tokens.weight", {vocab, D});
  add_decoder(s, "language_model.model.", layers, D, I, H, H, D / H, false, false);
  add(s, "language_model.lm_head.weight", {vocab, D});
  add(s, "multi_modal_projector.linear_1.weight", {D, E});
  add(s, "multi_modal_projector.linear_1.bias", {D});
  add(s, "multi_modal_projector.linear_2.weight", {D, D});
  add(s, "multi_modal_projector.linear_2.bias", {D});
  const std::string v = "vision_tower.vision_model.";
  add(s, v + "embeddings.class_embedding", {E});
  add(s, v + "embeddings.patch_embedding.weight", {E, 3, 14, 14});
  add(s, v + "embeddings.position_embedding.weight", {577, E});
  add(s, v + "pre_layrnorm.weight", {E}, Init::Ones);
  add(s, v + "pre_layrnorm.bias", {E}, Init::Zeros);
  for (int b = 0; b < depth; ++b) {
    const std::string p = v + "encoder.layers." + std::to_string(b) + ".";
    for (const char* n : {"layer_norm1", "layer_norm2"}) {
      add(s, p + n + ".weight", {E}, Init::Ones);
      add(s, p + n + ".bias", {E}, Init::Zeros);
    }
    for (const char* n : {"q_proj", "k_proj", "v_proj", "out_proj"}) {
      add(s, p + "self_attn." + n + ".weight", {E, E});
      add(s, p + "self_attn." + n + ".bias", {E});
    }
    add(s, p + "mlp.fc1.weight", {VI, E});
    add(s, p + "mlp.fc1.bias", {VI});
    add(s, p + "mlp.fc2.weight", {E, VI});
    add(s, p + "mlp.fc2.bias", {E});
  }
  add(s, v + "post_layernorm.weight", {E}, Init::Ones);
  add(s, v + "post_layernorm.bias", {E}, Init::Zeros);
  s.assets = assets + "/tokenizers/llava";
  s.copy = {"tokenizer.json", "tokenizer_config.json"};
  s.extra.push_back({"preprocessor_config.json",
                     ojson{{"crop_size", {{"height", 336}, {"width", 336}}},
                           {"do_center_crop", true},
                           {"do_convert_rgb", true},
                           {"do_normalize", true},
                           {"do_rescale", true},
                           {"do_resize", true},
                           {"image_mean", {0.48145466, 0.4578275, 0.40821073}},
                           {"image_processor_type", "CLIPImageProcessor"},
                           {"image_std", {0.26862954, 0.26130258, 0.27577711}},
                           {"processor_class", "LlavaProcessor"},
                           {"resample", 3},
                           {"rescale_factor", 0.00392156862745098},
                           {"size", {{"shortest_edge", 336}}}}});
  s.extra.push_back({"generation_config.json",
                     ojson{{"bos_token_id", 1}, {"eos_token_id", 2}, {"pad_token_id", 32001}}});
  return s;
}

// Fills n bf16 values: N(0, 0.02)-like (uniform with that standard deviation), from a
// xorshift stream seeded by the tensor's name, so a folder is reproducible.
void fill(const Tensor& t, int64_t offset, int64_t n, uint64_t seed, uint16_t* out) {
  if (t.init != Init::Normal) {
    const uint16_t v = t.init == Init::Ones ? f32_to_bf16(1.0f) : 0;
    std::fill(out, out + n, v);
    return;
  }
  uint64_t h = 1469598103934665603ull ^ seed;
  for (char c : t.name) h = (h ^ uint8_t(c)) * 1099511628211ull;
  parallel_for(n, 1 << 16, [&](int64_t b, int64_t e) {
    uint64_t s = (h + uint64_t(offset + b) * 0x9E3779B97F4A7C15ull) | 1;
    const float scale = 0.02f * 1.7320508f / float(1u << 23);
    for (int64_t i = b; i < e; ++i) {
      s ^= s << 13, s ^= s >> 7, s ^= s << 17;
      out[i] = f32_to_bf16(float(int32_t(s >> 40) - (1 << 23)) * scale);
    }
  });
}

std::string exe_dir() {
  std::error_code ec;
  const fs::path p = fs::read_symlink("/proc/self/exe", ec);
  return ec ? std::string(".") : p.parent_path().string();
}

// The bundled testdata folder: next to the source tree the binary was built in, or ./testdata.
std::string default_assets() {
  for (const fs::path& p : {fs::path(exe_dir()) / ".." / "testdata", fs::path("testdata")})
    if (fs::exists(p / "fixtures" / "qwen2_vl" / "model" / "tokenizer.json")) return p.lexically_normal().string();
  return "testdata";
}

struct MakeArgs {
  std::string like, out, assets;
  uint64_t seed = 0;
  bool force = false, dry_run = false;
};

int do_make_random(const MakeArgs& a) {
  const std::string assets = a.assets.empty() ? default_assets() : a.assets;
  Spec s;
  if (a.like == "qwen2-vl-2b") s = qwen2_vl(assets, false);
  else if (a.like == "qwen2-vl-7b") s = qwen2_vl(assets, true);
  else if (a.like == "qwen2.5-vl-3b") s = qwen25_vl_3b(assets);
  else if (a.like == "qwen3-vl-2b") s = qwen3_vl_2b(assets);
  else if (a.like == "llava-1.5-7b") s = llava15_7b(assets);
  for (const auto& f : s.copy)
    if (!fs::exists(fs::path(s.assets) / f)) {
      std::fprintf(stderr, "vlm: %s not found in %s (pass --assets DIR, the repository's testdata folder)\n",
                   f.c_str(), s.assets.c_str());
      return 2;
    }
  std::error_code ec;
  if (!a.dry_run && fs::exists(a.out, ec) && !fs::is_empty(a.out, ec) && !a.force) {
    std::fprintf(stderr, "vlm: %s exists and is not empty (use --force to overwrite)\n", a.out.c_str());
    return 2;
  }
  if (!a.dry_run) fs::create_directories(a.out, ec);
  if (ec) {
    std::fprintf(stderr, "vlm: cannot create %s: %s\n", a.out.c_str(), ec.message().c_str());
    return 1;
  }
  std::sort(s.tensors.begin(), s.tensors.end(), [](const Tensor& x, const Tensor& y) { return x.name < y.name; });
  int64_t total = 0;
  for (const auto& t : s.tensors) total += t.numel() * 2;
  if (a.dry_run) {
    std::printf("%s-like: %.3f B parameters, %zu tensors in %d shard(s), %.2f GB (dry run, nothing written)\n",
                a.like.c_str(), double(total / 2) / 1e9, s.tensors.size(), s.shards, double(total) / 1e9);
    return 0;
  }
  struct statvfs vf;
  if (statvfs(a.out.c_str(), &vf) == 0) {
    const double free_b = double(vf.f_bavail) * double(vf.f_frsize);
    if (free_b < double(total) + (256 << 20)) {
      std::fprintf(stderr, "vlm: %.1f GB needed in %s, %.1f GB free\n", total / 1e9, a.out.c_str(), free_b / 1e9);
      return 1;
    }
  }
  // Shards of about equal size, tensors in name order.
  const int n = s.shards;
  std::vector<std::vector<const Tensor*>> shards(static_cast<size_t>(n));
  {
    int64_t acc = 0;
    for (const auto& t : s.tensors) {
      const int i = std::min<int>(n - 1, int(acc * n / total));
      shards[size_t(i)].push_back(&t);
      acc += t.numel() * 2;
    }
  }
  ojson weight_map = ojson::object();
  std::vector<uint16_t> buf(static_cast<size_t>(32) << 20);
  for (int i = 0; i < n; ++i) {
    char fname[64];
    if (n == 1)
      std::snprintf(fname, sizeof fname, "model.safetensors");
    else
      std::snprintf(fname, sizeof fname, "model-%05d-of-%05d.safetensors", i + 1, n);
    ojson header = ojson::object();
    header["__metadata__"] = {{"format", "pt"}};
    int64_t off = 0;
    for (const Tensor* t : shards[size_t(i)]) {
      header[t->name] = {{"dtype", "BF16"}, {"shape", t->shape}, {"data_offsets", {off, off + t->numel() * 2}}};
      off += t->numel() * 2;
      weight_map[t->name] = fname;
    }
    std::string hs = header.dump();
    while (hs.size() % 8) hs.push_back(' ');
    const std::string path = (fs::path(a.out) / fname).string();
    FILE* f = std::fopen(path.c_str(), "wb");
    if (!f) {
      std::fprintf(stderr, "vlm: cannot write %s\n", path.c_str());
      return 1;
    }
    const uint64_t hl = hs.size();
    bool ok = std::fwrite(&hl, 8, 1, f) == 1 && std::fwrite(hs.data(), 1, hs.size(), f) == hs.size();
    for (const Tensor* t : shards[size_t(i)]) {
      for (int64_t o = 0; ok && o < t->numel(); o += int64_t(buf.size())) {
        const int64_t m = std::min<int64_t>(int64_t(buf.size()), t->numel() - o);
        fill(*t, o, m, a.seed, buf.data());
        ok = std::fwrite(buf.data(), 2, size_t(m), f) == size_t(m);
      }
    }
    ok = std::fclose(f) == 0 && ok;
    if (!ok) {
      std::fprintf(stderr, "vlm: write to %s failed\n", path.c_str());
      return 1;
    }
    std::fprintf(stderr, "wrote %s (%.2f GB)\n", path.c_str(), double(off) / 1e9);
  }
  auto write_json = [&](const std::string& name, const ojson& j) {
    std::ofstream o(fs::path(a.out) / name);
    o << j.dump(2) << "\n";
    return bool(o);
  };
  bool ok = write_json("config.json", s.config);
  if (n > 1)
    ok = ok && write_json("model.safetensors.index.json",
                          ojson{{"metadata", {{"total_size", total}}}, {"weight_map", weight_map}});
  for (const auto& [name, j] : s.extra) ok = ok && write_json(name, j);
  for (const auto& f : s.copy) {
    fs::copy_file(fs::path(s.assets) / f, fs::path(a.out) / f, fs::copy_options::overwrite_existing, ec);
    ok = ok && !ec;
  }
  if (!ok) {
    std::fprintf(stderr, "vlm: writing the configs to %s failed\n", a.out.c_str());
    return 1;
  }
  int64_t params = total / 2;
  std::printf("%s: %s-like, %.3f B parameters, %zu tensors in %d shard(s), %.2f GB\n", a.out.c_str(),
              a.like.c_str(), double(params) / 1e9, s.tensors.size(), n, double(total) / 1e9);
  return 0;
}

}  // namespace

void add_make_random(CLI::App& app) {
  auto a = std::make_shared<MakeArgs>();
  auto* c = app.add_subcommand("make-random",
                               "Write a checkpoint folder with a real model's shapes, names, shards and configs and "
                               "random bf16 weights (for benchmarks)");
  c->add_option("--like", a->like, "Model whose layout to copy")
      ->required()
      ->check(CLI::IsMember({"qwen2-vl-2b", "qwen2.5-vl-3b", "qwen2-vl-7b", "llava-1.5-7b", "qwen3-vl-2b"}));
  c->add_option("--out,-o", a->out, "Output folder (created; must be empty unless --force)")->required();
  c->add_option("--seed", a->seed, "Seed of the random weights");
  c->add_option("--assets", a->assets,
                "The repository's testdata folder (tokenizer and template files are copied from it)");
  c->add_flag("--force", a->force, "Write into a non-empty folder");
  c->add_flag("--dry-run", a->dry_run, "Print what would be written (parameters, tensors, shards) and stop");
  c->callback([a] { set_exit_code(do_make_random(*a)); });
}

}  // namespace vlm::cli
