#!/usr/bin/env python3
"""Writes a llama-architecture GGUF model with random weights, so llama.cpp can serve a real model offline.

53M parameters (dim 768, 8 layers, ff 2048, 12 heads, 4 KV heads, vocab 2048, f16, about 107 MB): big enough
that compute, not fixed overhead, dominates a request. The vocabulary is SentencePiece-style (control tokens,
256 byte-fallback tokens, printable characters, padding pieces); the output rows of control and byte tokens
are zero, so generation never stops early and every request streams exactly max_tokens tokens.

    python3 scripts/make-random-gguf.py OUT.gguf [--seed N]
"""
import argparse
import string

import numpy as np
import gguf

DIM, LAYERS, FF, HEADS, KV_HEADS, VOCAB, CONTEXT = 768, 8, 2048, 12, 4, 2048, 4096


def vocabulary():
    tokens, scores, types = [], [], []
    def add(piece, score, kind):
        tokens.append(piece.encode("utf-8"))
        scores.append(score)
        types.append(kind)
    add("<unk>", 0.0, gguf.TokenType.UNKNOWN)
    add("<s>", 0.0, gguf.TokenType.CONTROL)
    add("</s>", 0.0, gguf.TokenType.CONTROL)
    for byte in range(256):
        add(f"<0x{byte:02X}>", 0.0, gguf.TokenType.BYTE)
    printable = [c for c in string.ascii_letters + string.digits + string.punctuation]
    for index, char in enumerate(printable):
        add(char, -float(index), gguf.TokenType.NORMAL)
        add("\u2581" + char, -float(index) - 0.5, gguf.TokenType.NORMAL)
    index = 0
    while len(tokens) < VOCAB:
        add(f"\u2581w{index}", -100.0 - index, gguf.TokenType.NORMAL)
        index += 1
    return tokens, scores, types


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("out")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    tokens, scores, types = vocabulary()
    writer = gguf.GGUFWriter(args.out, "llama")
    writer.add_name("autotune-random-53m")
    writer.add_context_length(CONTEXT)
    writer.add_embedding_length(DIM)
    writer.add_block_count(LAYERS)
    writer.add_feed_forward_length(FF)
    writer.add_head_count(HEADS)
    writer.add_head_count_kv(KV_HEADS)
    writer.add_rope_dimension_count(DIM // HEADS)
    writer.add_layer_norm_rms_eps(1e-5)
    writer.add_file_type(gguf.LlamaFileType.MOSTLY_F16)
    writer.add_tokenizer_model("llama")
    writer.add_token_list(tokens)
    writer.add_token_scores(scores)
    writer.add_token_types(types)
    writer.add_bos_token_id(1)
    writer.add_eos_token_id(2)
    writer.add_unk_token_id(0)
    writer.add_add_bos_token(True)
    writer.add_add_eos_token(False)
    writer.add_chat_template("{% for m in messages %}{{ m['content'] }}\n{% endfor %}")

    def weight(*shape, scale=0.02):
        return (rng.standard_normal(shape) * scale).astype(np.float16)

    head_dim = DIM // HEADS
    writer.add_tensor("token_embd.weight", weight(VOCAB, DIM))
    for layer in range(LAYERS):
        prefix = f"blk.{layer}."
        writer.add_tensor(prefix + "attn_norm.weight", np.ones(DIM, dtype=np.float32))
        writer.add_tensor(prefix + "attn_q.weight", weight(DIM, DIM))
        writer.add_tensor(prefix + "attn_k.weight", weight(KV_HEADS * head_dim, DIM))
        writer.add_tensor(prefix + "attn_v.weight", weight(KV_HEADS * head_dim, DIM))
        writer.add_tensor(prefix + "attn_output.weight", weight(DIM, DIM))
        writer.add_tensor(prefix + "ffn_norm.weight", np.ones(DIM, dtype=np.float32))
        writer.add_tensor(prefix + "ffn_gate.weight", weight(FF, DIM))
        writer.add_tensor(prefix + "ffn_up.weight", weight(FF, DIM))
        writer.add_tensor(prefix + "ffn_down.weight", weight(DIM, FF))
    writer.add_tensor("output_norm.weight", np.ones(DIM, dtype=np.float32))
    output = weight(VOCAB, DIM)
    for token, kind in enumerate(types):
        if kind in (gguf.TokenType.CONTROL, gguf.TokenType.BYTE, gguf.TokenType.UNKNOWN):
            output[token, :] = 0
    writer.add_tensor("output.weight", output)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


if __name__ == "__main__":
    main()
