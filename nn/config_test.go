package nn

import (
	"math"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestParseConfigForms(t *testing.T) {
	c, err := ParseConfig([]byte(`{"hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2,
		"num_attention_heads": 8, "vocab_size": 100, "eos_token_id": [5, 6], "bos_token_id": null,
		"rope_parameters": {"rope_type": "default", "rope_theta": 500000.0}}`))
	require.NoError(t, err)
	require.Equal(t, 8, c.HeadDim)
	require.Equal(t, 8, c.NumKVHeads)
	require.Equal(t, []int{5, 6}, c.EOSTokenIDs)
	require.Equal(t, -1, c.BOSTokenID)
	require.Equal(t, 500000.0, c.RoPE.Theta)
	require.Equal(t, "default", c.RoPE.Type)

	c, err = ParseConfig([]byte(`{"hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2,
		"num_attention_heads": 8, "num_key_value_heads": 2, "head_dim": 16, "vocab_size": 100, "eos_token_id": 3,
		"rope_theta": 1000.0, "rope_scaling": {"type": "linear", "factor": 4.0}}`))
	require.NoError(t, err)
	require.Equal(t, 16, c.HeadDim)
	require.Equal(t, []int{3}, c.EOSTokenIDs)
	inv := c.InvFreq()
	require.Len(t, inv, 8)
	for i, f := range inv {
		require.InDelta(t, math.Pow(1000, -float64(2*i)/16)/4, f, 1e-15)
	}
}

// The llama3 rule, checked value by value against its three branches.
func TestInvFreqLlama3(t *testing.T) {
	c, err := ParseConfig([]byte(`{"hidden_size": 32, "intermediate_size": 8, "num_hidden_layers": 1,
		"num_attention_heads": 4, "vocab_size": 10, "rope_theta": 10000.0,
		"rope_scaling": {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
		"high_freq_factor": 4.0, "original_max_position_embeddings": 160}}`))
	require.NoError(t, err)
	inv := c.InvFreq()
	// D = 8: base frequencies 1, 0.1, 0.01, 0.001; wavelengths 2π·10^i.
	// 6.28 < 160/4 keeps its frequency; 62.8 lies between 40 and 160;
	// 628 and 6283 exceed 160 and are divided by 8.
	s := (160/(2*math.Pi*10) - 1) / 3
	want := []float64{1, (1-s)*0.1/8 + s*0.1, 0.01 / 8, 0.001 / 8}
	for i := range want {
		require.InDelta(t, want[i], inv[i], 1e-12, "i=%d", i)
	}
}

func TestParseConfigErrors(t *testing.T) {
	base := `"hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2, "vocab_size": 100`
	for _, tc := range []struct{ json, want string }{
		{`{"intermediate_size": 1, "num_hidden_layers": 1, "num_attention_heads": 1, "vocab_size": 1}`, "missing hidden_size"},
		{`{` + base + `}`, "missing num_attention_heads"},
		{`{` + base + `, "num_attention_heads": 8, "num_key_value_heads": 3}`, "not a multiple"},
		{`{` + base + `, "num_attention_heads": 8, "hidden_act": "gelu"}`, `hidden_act "gelu"`},
		{`{` + base + `, "num_attention_heads": 8, "model_type": "gpt2"}`, `model_type "gpt2"`},
		{`{` + base + `, "num_attention_heads": 8, "rope_scaling": {"rope_type": "yarn", "factor": 2}}`, `rope_type "yarn"`},
		{`{` + base + `, "num_attention_heads": 8, "rope_scaling": {"rope_type": "llama3", "factor": 8}}`, "low_freq_factor"},
		{`{` + base + `, "num_attention_heads": 8, "eos_token_id": "x"}`, "eos_token_id"},
		{`{` + base + `, "num_attention_heads": 0}`, "must be positive"},
		{`[1, 2]`, "invalid JSON"},
	} {
		_, err := ParseConfig([]byte(tc.json))
		require.ErrorContains(t, err, tc.want, tc.json)
	}
}
