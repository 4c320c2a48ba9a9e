#!/usr/bin/env python3
"""Benchmark tooling: writes llama.cpp GGUF files (text model + mmproj, F16) for a Qwen2-VL
checkpoint folder, so that llama.cpp can run the same random model as `vlm bench`
(`vlm make-random --like qwen2-vl-2b`). llama.cpp's own converter needs torch and transformers,
which this machine cannot install; this uses only llama.cpp's gguf-py and numpy (Debian's
python3-numpy) and mirrors what that converter does for Qwen2-VL (conversion/qwenvl.py): text
tensors renamed by gguf-py's tensor map, vision qkv split into q/k/v, the Conv3D patch embedding
split into its two temporal Conv2D slices, mrope sections padded to 4, the byte-level BPE vocab
and merges. Quantise the text GGUF with llama-quantize afterwards.

  GGUF_PY=/path/to/llama.cpp/gguf-py /usr/bin/python3 scripts/bench/hf2gguf_qwen2vl.py MODEL_DIR OUT_DIR
"""
import json, os, struct, sys
# llama.cpp's gguf-py (pure Python + numpy) from a llama.cpp source tree: GGUF_PY=/path/to/llama.cpp/gguf-py
sys.path.insert(0, os.environ.get('GGUF_PY', 'gguf-py'))
import numpy as np
import gguf

src, out_dir = sys.argv[1], sys.argv[2]
cfg = json.load(open(os.path.join(src, 'config.json')))
pre = json.load(open(os.path.join(src, 'preprocessor_config.json')))

def load_tensors():
    idx = json.load(open(os.path.join(src, 'model.safetensors.index.json')))
    files = sorted(set(idx['weight_map'].values()))
    for f in files:
        path = os.path.join(src, f)
        with open(path, 'rb') as fh:
            n = struct.unpack('<Q', fh.read(8))[0]
            hdr = json.loads(fh.read(n))
        mm = np.memmap(path, dtype=np.uint8, mode='r')
        base = 8 + n
        for name, info in hdr.items():
            if name == '__metadata__':
                continue
            a, b = info['data_offsets']
            raw = mm[base + a: base + b]
            dt = info['dtype']
            if dt == 'BF16':
                u = raw.view(np.uint16).astype(np.uint32) << 16
                arr = u.view(np.float32)
            elif dt == 'F32':
                arr = raw.view(np.float32)
            elif dt == 'F16':
                arr = raw.view(np.float16).astype(np.float32)
            else:
                raise SystemExit('dtype ' + dt)
            yield name, arr.reshape(info['shape'])

def f16(x):
    return np.ascontiguousarray(x.astype(np.float16))

# ---------------- text model ----------------
arch = gguf.MODEL_ARCH.QWEN2VL
w = gguf.GGUFWriter(os.path.join(out_dir, 'qwen2vl-2b-F16.gguf'), gguf.MODEL_ARCH_NAMES[arch])
nl = cfg['num_hidden_layers']
w.add_type(gguf.GGUFType.MODEL)
w.add_name('random-qwen2-vl-2b')
w.add_file_type(gguf.LlamaFileType.MOSTLY_F16)
w.add_block_count(nl)
w.add_context_length(cfg['max_position_embeddings'])
w.add_embedding_length(cfg['hidden_size'])
w.add_feed_forward_length(cfg['intermediate_size'])
w.add_head_count(cfg['num_attention_heads'])
w.add_head_count_kv(cfg['num_key_value_heads'])
sec = list(cfg['rope_scaling']['mrope_section']) + [0]
w.add_rope_dimension_sections(sec[:4])
w.add_rope_freq_base(cfg['rope_theta'])
w.add_layer_norm_rms_eps(cfg['rms_norm_eps'])

tok = json.load(open(os.path.join(src, 'tokenizer.json')))
vocab = tok['model']['vocab']
added = {t['content']: t for t in tok['added_tokens']}
rev = {i: s for s, i in vocab.items()}
for t in tok['added_tokens']:
    rev[t['id']] = t['content']
tokens, types = [], []
for i in range(cfg['vocab_size']):
    if i not in rev:
        tokens.append(f'[PAD{i}]'); types.append(gguf.TokenType.UNUSED)
    else:
        s = rev[i]
        tokens.append(s)
        if s in added:
            types.append(gguf.TokenType.CONTROL if added[s]['special'] else gguf.TokenType.USER_DEFINED)
        else:
            types.append(gguf.TokenType.NORMAL)
w.add_tokenizer_model('gpt2')
w.add_tokenizer_pre('qwen2')
w.add_token_list(tokens)
w.add_token_types(types)
sv = gguf.SpecialVocab(src, load_merges=True)
sv.add_to_gguf(w)

tmap = gguf.get_tensor_name_map(arch, nl)
vis = {}
for name, arr in load_tensors():
    if name.startswith('visual.'):
        vis[name] = arr
        continue
    new = tmap.get_name(name, try_suffixes=('.weight', '.bias'))
    if new is None:
        raise SystemExit('no map for ' + name)
    if arr.ndim == 1:
        w.add_tensor(new, np.ascontiguousarray(arr.astype(np.float32)))
    else:
        w.add_tensor(new, f16(arr))
w.write_header_to_file(); w.write_kv_data_to_file(); w.write_tensors_to_file(); w.close()
print('text done', flush=True)

# ---------------- mmproj ----------------
vc = cfg['vision_config']
m = gguf.GGUFWriter(os.path.join(out_dir, 'mmproj-qwen2vl-2b-F16.gguf'), 'clip')
m.add_type(gguf.GGUFType.MMPROJ)
m.add_file_type(gguf.LlamaFileType.MOSTLY_F16)
m.add_clip_has_vision_encoder(True)
m.add_vision_projection_dim(cfg['hidden_size'])
m.add_vision_image_size(560)
m.add_vision_patch_size(vc['patch_size'])
m.add_vision_embedding_length(vc['embed_dim'])
m.add_vision_feed_forward_length(vc['hidden_size'])
m.add_vision_block_count(vc['depth'])
m.add_vision_head_count(vc['num_heads'])
m.add_vision_image_mean(pre['image_mean'])
m.add_vision_image_std(pre['image_std'])
m.add_clip_projector_type(gguf.VisionProjectorType.QWEN2VL)
m.add_vision_attention_layernorm_eps(cfg.get('rms_norm_eps', 1e-6))
vmap = gguf.get_tensor_name_map(gguf.MODEL_ARCH.MMPROJ, vc['depth'])
def addv(name, arr, force_f32=False):
    new = vmap.get_name(name, try_suffixes=('.weight', '.bias'))
    if new is None:
        raise SystemExit('no vision map for ' + name)
    m.add_tensor(new, np.ascontiguousarray(arr.astype(np.float32)) if (arr.ndim == 1 or force_f32) else f16(arr))
for name, arr in vis.items():
    if '.qkv.' in name:
        c = arr.shape[0] // 3
        for j, p in enumerate('qkv'):
            addv(name.replace('qkv', p), arr[j * c:(j + 1) * c])
    elif 'patch_embed.proj.weight' in name:
        base = gguf.TENSOR_NAMES[gguf.MODEL_TENSOR.V_ENC_EMBD_PATCH]
        m.add_tensor(base + '.weight', f16(arr[:, :, 0]))
        m.add_tensor(base + '.weight.1', f16(arr[:, :, 1]))
    else:
        addv(name, arr)
m.write_header_to_file(); m.write_kv_data_to_file(); m.write_tensors_to_file(); m.close()
print('mmproj done', flush=True)
