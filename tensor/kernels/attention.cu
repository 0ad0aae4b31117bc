// Causal grouped-query attention: cpu.go's Attention and AttentionBackward,
// decode.go's AttentionCached. q (B·T, H·D), k and v (B·cap, KV·D) with
// query head h reading KV head g = h / (H/KV); query t of a sequence sees
// keys 0…start+t (start = 0, cap = T in training). lse (B, H, T) keeps each
// query's log-sum-exp so that backward recomputes the probabilities instead
// of storing the T×T matrix.
//
// The tiled kernels hold a tile of KT keys (or queries) in shared memory
// and give each warp one query (or key): lane j of a warp scores key j of
// the tile, the tile's softmax weights are then broadcast lane by lane
// (__shfl_sync) while each lane accumulates its own output dimensions
// (lane, lane+32, …). They need D ≤ MAXD. The naive kernels beside them,
// one thread per query (or key), handle any D and are what the tests check
// the tiled ones against (besides the CPU).

#define QW 8      // queries (warps) per block
#define KW 8      // keys (warps) per block in attn_bwd_dkv
#define KT 32     // keys (or queries) per shared tile: one per lane
#define MAXD 128  // largest head size of the tiled kernels
#define NC (MAXD / 32)

// Forward, online softmax over key tiles. grid (⌈T/QW⌉, H, B), 32·QW threads.
//
//	out_t = Σ_j softmax_j(q_t·k_j·scale) v_j,  lse_t = log Σ_j exp(q_t·k_j·scale)
extern "C" __global__ void attn_fwd(float* out, float* lse, const float* q, const float* k, const float* v,
                                    int T, int H, int KV, int D, int start, int cap, float scale) {
	__shared__ float Qs[QW][MAXD];
	__shared__ float Ks[KT][MAXD + 1];
	__shared__ float Vs[KT][MAXD + 1];
	int w = threadIdx.x >> 5, lane = threadIdx.x & 31;
	int b = blockIdx.z, h = blockIdx.y, g = h / (H / KV);
	int t = blockIdx.x * QW + w;
	int qc = H * D, kc = KV * D;
	bool active = t < T;
	if (active)
		for (int i = lane; i < D; i += 32) Qs[w][i] = q[((i64)b * T + t) * qc + h * D + i];
	int nkeys = start + imin(T - 1, (int)blockIdx.x * QW + QW - 1) + 1;
	int last = start + t; // this query's last key
	const float* kb = k + (i64)b * cap * kc + g * D;
	const float* vb = v + (i64)b * cap * kc + g * D;
	float m = NEG_INF, l = 0, o[NC];
	for (int c = 0; c < NC; c++) o[c] = 0;
	for (int j0 = 0; j0 < nkeys; j0 += KT) {
		__syncthreads(); // the previous tile is used up
		for (int e = threadIdx.x; e < KT * D; e += blockDim.x) {
			int jj = e / D, i = e - jj * D, j = j0 + jj;
			Ks[jj][i] = j < nkeys ? kb[(i64)j * kc + i] : 0.f;
			Vs[jj][i] = j < nkeys ? vb[(i64)j * kc + i] : 0.f;
		}
		__syncthreads();
		if (!active || j0 > last) continue; // uniform across the warp
		int j = j0 + lane;
		float s = NEG_INF;
		if (j <= last) {
			float dot = 0;
			for (int i = 0; i < D; i++) dot += Qs[w][i] * Ks[lane][i];
			s = dot * scale;
		}
		float mn = fmaxf(m, warp_max(s)); // finite: key j0 ≤ last is in the tile
		float p = j <= last ? expf(s - mn) : 0.f;
		float corr = expf(m - mn);
		l = l * corr + warp_sum(p);
		for (int c = 0; c < NC; c++) o[c] *= corr;
		int jn = imin(KT, last - j0 + 1);
		for (int jj = 0; jj < jn; jj++) {
			float pj = __shfl_sync(FULL_MASK, p, jj);
			for (int c = 0; c < NC; c++) {
				int i = lane + 32 * c;
				if (i < D) o[c] += pj * Vs[jj][i];
			}
		}
		m = mn;
	}
	if (!active) return;
	float* ot = out + ((i64)b * T + t) * qc + h * D;
	for (int c = 0; c < NC; c++) {
		int i = lane + 32 * c;
		if (i < D) ot[i] = o[c] / l;
	}
	if (lse != 0 && lane == 0) lse[((i64)b * H + h) * T + t] = m + logf(l);
}

// Naive forward: one thread per (b, h, t), two passes over the keys.
// grid-stride over B·H·T.
extern "C" __global__ void attn_fwd_naive(float* out, float* lse, const float* q, const float* k, const float* v,
                                          int B, int T, int H, int KV, int D, int start, int cap, float scale) {
	int qc = H * D, kc = KV * D;
	FOR_EACH(e, (i64)B * H * T) {
		int t = (int)(e % T), h = (int)(e / T % H), b = (int)(e / ((i64)T * H));
		int g = h / (H / KV), last = start + t;
		const float* qt = q + ((i64)b * T + t) * qc + h * D;
		const float* kb = k + (i64)b * cap * kc + g * D;
		const float* vb = v + (i64)b * cap * kc + g * D;
		float m = NEG_INF;
		for (int j = 0; j <= last; j++) {
			float dot = 0;
			for (int i = 0; i < D; i++) dot += qt[i] * kb[(i64)j * kc + i];
			m = fmaxf(m, dot * scale);
		}
		float* ot = out + ((i64)b * T + t) * qc + h * D;
		for (int i = 0; i < D; i++) ot[i] = 0;
		float sum = 0;
		for (int j = 0; j <= last; j++) {
			float dot = 0;
			for (int i = 0; i < D; i++) dot += qt[i] * kb[(i64)j * kc + i];
			float p = expf(dot * scale - m);
			sum += p;
			for (int i = 0; i < D; i++) ot[i] += p * vb[(i64)j * kc + i];
		}
		for (int i = 0; i < D; i++) ot[i] /= sum;
		if (lse != 0) lse[((i64)b * H + h) * T + t] = m + logf(sum);
	}
}

// Backward, step 1: δ_t = dout_t·out_t per (row, head), one warp each.
// delta is (B, H, T) like lse.
extern "C" __global__ void attn_bwd_delta(float* delta, const float* dout, const float* out, int B, int T, int H, int D) {
	int lane = threadIdx.x & 31;
	i64 warps = (i64)gridDim.x * (blockDim.x >> 5);
	for (i64 e = (i64)blockIdx.x * (blockDim.x >> 5) + (threadIdx.x >> 5); e < (i64)B * T * H; e += warps) {
		i64 row = e / H; // b·T + t
		int h = (int)(e - row * H);
		const float* a = dout + row * H * D + h * D;
		const float* o = out + row * H * D + h * D;
		float s = 0;
		for (int i = lane; i < D; i += 32) s += a[i] * o[i];
		s = warp_sum(s);
		int b = (int)(row / T), t = (int)(row - (i64)b * T);
		if (lane == 0) delta[((i64)b * H + h) * T + t] = s;
	}
}

// Backward, step 2, for dq: with p_tj = exp(q_t·k_j·scale − lse_t) and
// ds_tj = p_tj (dout_t·v_j − δ_t)·scale, dq_t += Σ_j ds_tj k_j. One warp per
// query as in attn_fwd; grid (⌈T/QW⌉, H, B).
extern "C" __global__ void attn_bwd_dq(float* dq, const float* q, const float* k, const float* v, const float* dout,
                                       const float* lse, const float* delta, int T, int H, int KV, int D, float scale) {
	__shared__ float Qs[QW][MAXD];
	__shared__ float Ds[QW][MAXD];
	__shared__ float Ks[KT][MAXD + 1];
	__shared__ float Vs[KT][MAXD + 1];
	int w = threadIdx.x >> 5, lane = threadIdx.x & 31;
	int b = blockIdx.z, h = blockIdx.y, g = h / (H / KV);
	int t = blockIdx.x * QW + w;
	int qc = H * D, kc = KV * D;
	bool active = t < T;
	float lt = 0, dt = 0;
	if (active) {
		i64 o = ((i64)b * T + t) * qc + h * D;
		for (int i = lane; i < D; i += 32) {
			Qs[w][i] = q[o + i];
			Ds[w][i] = dout[o + i];
		}
		lt = lse[((i64)b * H + h) * T + t];
		dt = delta[((i64)b * H + h) * T + t];
	}
	int nkeys = imin(T - 1, (int)blockIdx.x * QW + QW - 1) + 1;
	const float* kb = k + (i64)b * T * kc + g * D;
	const float* vb = v + (i64)b * T * kc + g * D;
	float acc[NC];
	for (int c = 0; c < NC; c++) acc[c] = 0;
	for (int j0 = 0; j0 < nkeys; j0 += KT) {
		__syncthreads();
		for (int e = threadIdx.x; e < KT * D; e += blockDim.x) {
			int jj = e / D, i = e - jj * D, j = j0 + jj;
			Ks[jj][i] = j < nkeys ? kb[(i64)j * kc + i] : 0.f;
			Vs[jj][i] = j < nkeys ? vb[(i64)j * kc + i] : 0.f;
		}
		__syncthreads();
		if (!active || j0 > t) continue;
		int j = j0 + lane;
		float ds = 0;
		if (j <= t) {
			float sc = 0, dp = 0;
			for (int i = 0; i < D; i++) {
				sc += Qs[w][i] * Ks[lane][i];
				dp += Ds[w][i] * Vs[lane][i];
			}
			float p = expf(sc * scale - lt);
			ds = p * (dp - dt) * scale;
		}
		int jn = imin(KT, t - j0 + 1);
		for (int jj = 0; jj < jn; jj++) {
			float dj = __shfl_sync(FULL_MASK, ds, jj);
			for (int c = 0; c < NC; c++) {
				int i = lane + 32 * c;
				if (i < D) acc[c] += dj * Ks[jj][i];
			}
		}
	}
	if (!active) return;
	float* d = dq + ((i64)b * T + t) * qc + h * D;
	for (int c = 0; c < NC; c++) {
		int i = lane + 32 * c;
		if (i < D) d[i] += acc[c];
	}
}

// Backward, step 3, for dk and dv: dk_j += Σ_h Σ_t ds_tj q_t,
// dv_j += Σ_h Σ_t p_tj dout_t over the heads h of KV head g and the
// queries t ≥ j. One warp per key, lane t of a tile of queries;
// grid (⌈T/KW⌉, KV, B). Each key is one warp's alone: no atomics.
extern "C" __global__ void attn_bwd_dkv(float* dk, float* dv, const float* q, const float* k, const float* v,
                                        const float* dout, const float* lse, const float* delta,
                                        int T, int H, int KV, int D, float scale) {
	__shared__ float Ks[KW][MAXD];
	__shared__ float Vs[KW][MAXD];
	__shared__ float Qt[KT][MAXD + 1];
	__shared__ float Dt[KT][MAXD + 1];
	__shared__ float Lt[KT], Et[KT];
	int w = threadIdx.x >> 5, lane = threadIdx.x & 31;
	int b = blockIdx.z, g = blockIdx.y, group = H / KV;
	int j = blockIdx.x * KW + w;
	int qc = H * D, kc = KV * D;
	bool active = j < T;
	if (active)
		for (int i = lane; i < D; i += 32) {
			Ks[w][i] = k[((i64)b * T + j) * kc + g * D + i];
			Vs[w][i] = v[((i64)b * T + j) * kc + g * D + i];
		}
	float ak[NC], av[NC];
	for (int c = 0; c < NC; c++) ak[c] = av[c] = 0;
	int first = (int)blockIdx.x * KW / KT * KT; // the first tile with a query ≥ the block's first key
	for (int h = g * group; h < (g + 1) * group; h++) {
		for (int t0 = first; t0 < T; t0 += KT) {
			__syncthreads();
			for (int e = threadIdx.x; e < KT * D; e += blockDim.x) {
				int tt = e / D, i = e - tt * D, t = t0 + tt;
				i64 o = ((i64)b * T + t) * qc + h * D + i;
				Qt[tt][i] = t < T ? q[o] : 0.f;
				Dt[tt][i] = t < T ? dout[o] : 0.f;
			}
			for (int tt = threadIdx.x; tt < KT; tt += blockDim.x) {
				int t = t0 + tt;
				Lt[tt] = t < T ? lse[((i64)b * H + h) * T + t] : 0.f;
				Et[tt] = t < T ? delta[((i64)b * H + h) * T + t] : 0.f;
			}
			__syncthreads();
			if (!active || t0 + KT - 1 < j) continue;
			int t = t0 + lane;
			float p = 0, ds = 0;
			if (t < T && t >= j) {
				float sc = 0, dp = 0;
				for (int i = 0; i < D; i++) {
					sc += Qt[lane][i] * Ks[w][i];
					dp += Dt[lane][i] * Vs[w][i];
				}
				p = expf(sc * scale - Lt[lane]);
				ds = p * (dp - Et[lane]) * scale;
			}
			int lo = imax(0, j - t0), hi = imin(KT, T - t0);
			for (int tt = lo; tt < hi; tt++) {
				float pt = __shfl_sync(FULL_MASK, p, tt);
				float dt = __shfl_sync(FULL_MASK, ds, tt);
				for (int c = 0; c < NC; c++) {
					int i = lane + 32 * c;
					if (i < D) {
						av[c] += pt * Dt[tt][i];
						ak[c] += dt * Qt[tt][i];
					}
				}
			}
		}
	}
	if (!active) return;
	i64 o = ((i64)b * T + j) * kc + g * D;
	for (int c = 0; c < NC; c++) {
		int i = lane + 32 * c;
		if (i < D) {
			dk[o + i] += ak[c];
			dv[o + i] += av[c];
		}
	}
}

// Naive backward for dq: one thread per (b, h, t). δ_t is recomputed.
extern "C" __global__ void attn_bwd_dq_naive(float* dq, const float* q, const float* k, const float* v, const float* dout,
                                             const float* out, const float* lse, int B, int T, int H, int KV, int D, float scale) {
	int qc = H * D, kc = KV * D;
	FOR_EACH(e, (i64)B * H * T) {
		int t = (int)(e % T), h = (int)(e / T % H), b = (int)(e / ((i64)T * H));
		int g = h / (H / KV);
		i64 o = ((i64)b * T + t) * qc + h * D;
		float dt = 0;
		for (int i = 0; i < D; i++) dt += dout[o + i] * out[o + i];
		float lt = lse[((i64)b * H + h) * T + t];
		for (int j = 0; j <= t; j++) {
			const float* kj = k + ((i64)b * T + j) * kc + g * D;
			const float* vj = v + ((i64)b * T + j) * kc + g * D;
			float sc = 0, dp = 0;
			for (int i = 0; i < D; i++) {
				sc += q[o + i] * kj[i];
				dp += dout[o + i] * vj[i];
			}
			float ds = expf(sc * scale - lt) * (dp - dt) * scale;
			for (int i = 0; i < D; i++) dq[o + i] += ds * kj[i];
		}
	}
}

// Naive backward for dk, dv: one thread per (b, g, j).
extern "C" __global__ void attn_bwd_dkv_naive(float* dk, float* dv, const float* q, const float* k, const float* v,
                                              const float* dout, const float* out, const float* lse,
                                              int B, int T, int H, int KV, int D, float scale) {
	int qc = H * D, kc = KV * D, group = H / KV;
	FOR_EACH(e, (i64)B * KV * T) {
		int j = (int)(e % T), g = (int)(e / T % KV), b = (int)(e / ((i64)T * KV));
		i64 oj = ((i64)b * T + j) * kc + g * D;
		for (int h = g * group; h < (g + 1) * group; h++) {
			for (int t = j; t < T; t++) {
				i64 o = ((i64)b * T + t) * qc + h * D;
				float dt = 0, sc = 0, dp = 0;
				for (int i = 0; i < D; i++) {
					dt += dout[o + i] * out[o + i];
					sc += q[o + i] * k[oj + i];
					dp += dout[o + i] * v[oj + i];
				}
				float p = expf(sc * scale - lse[((i64)b * H + h) * T + t]);
				float ds = p * (dp - dt) * scale;
				for (int i = 0; i < D; i++) {
					dk[oj + i] += ds * q[o + i];
					dv[oj + i] += p * dout[o + i];
				}
			}
		}
	}
}
