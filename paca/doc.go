// Package paca fine-tunes LLaMA-family models with Partial Connection
// Adaptation (PaCA; Woo et al., ICLR 2025) and the methods it is measured
// against: LoRA, DoRA, their 4-bit variants QPaCA and QLoRA, and full
// fine-tuning.
//
// # The idea
//
// A linear layer computes y = x Wᵀ with W (out, in). LoRA trains a second
// path beside it, y = x Wᵀ + s·(x Aᵀ)Bᵀ: two more GEMMs in forward, three
// more in backward, and it must keep all of x for dA. PaCA instead trains
// r of W's input columns in place. With I the r chosen columns (random by
// default, sorted) and a trainable Δ (out, r), zero at the start, scaled
// by s = alpha/r:
//
//	W_eff = W with columns I replaced by W[:, I] + s·Δ     PaCA.writeColumns
//	y     = x W_effᵀ + b                                 PaCA.Forward, one GEMM
//	dx    = dy W_eff                                      backward, one GEMM
//	dΔ    = s · dyᵀ x[..., I]                             backward, (out, n)·(n, r)
//
// The only activation kept for backward is x[..., I], n·r values instead of
// LoRA's n·in (TestPaCASavesOnlySelectedColumns counts the bytes). And
// since W_eff's columns I are W[:, I] + s·Δ, the chain rule gives
//
//	dΔ / s = (dL/dW)[:, I]
//
// exactly: PaCA's gradient is a slice of full fine-tuning's.
// TestPaCAGradient checks this identity on every projection of the
// PyTorch-verified golden models, and TestQPaCAGradient for the 4-bit base.
//
// # Where things are
//
//   - paca.go: the PaCA layer; qpaca.go: PaCA on an NF4 base (nf4.go).
//   - lora.go, dora.go, qlora.go, full.go: the baselines, each a Layer.
//   - select.go: which columns (random, weight-norm, gradient).
//   - apply.go: Apply puts a method on a model's target projections.
//   - adapter.go, export.go: PEFT adapter files, merging, PaCA as LoRA.
//   - train.go: the training loop behind "paca train".
//
// Every Layer is an nn.Layer (the model calls Forward) and keeps its
// backward next to its forward, recorded on the tensor.Tape.
//
// # Files
//
// Adapters are HF PEFT directories: adapter_config.json with peft_type
// "PACA", r, paca_alpha, target_modules and random_seed, and
// adapter_model.safetensors with base_model.model.<module>.paca_delta
// (out, r) and .paca_indices (r, int64). Reading also accepts the paper
// code's paca_w = (W[:, I] + s·Δ)/s. Because PaCA's update is the rank-r
// product s·B·A with A selecting columns I and B = Δ, ExportLoRA writes
// any PaCA adapter as an exactly equivalent LoRA adapter.
package paca
