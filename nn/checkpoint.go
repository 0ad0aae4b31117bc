package nn

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/gopaca/paca/nn/safetensors"
)

// checkpoint is the set of tensors of an HF model directory: one
// model.safetensors, or the shards listed by model.safetensors.index.json.
type checkpoint struct {
	files  map[string]*safetensors.File // shard file name → open file
	where  map[string]string            // tensor name → shard file name
	dir    string
	unused map[string]bool // tensors not yet read
}

const (
	singleFile = "model.safetensors"
	indexFile  = "model.safetensors.index.json"
)

func openCheckpoint(dir string) (*checkpoint, error) {
	ck := &checkpoint{files: map[string]*safetensors.File{}, where: map[string]string{}, dir: dir, unused: map[string]bool{}}
	var shards []string
	if _, err := os.Stat(filepath.Join(dir, singleFile)); err == nil {
		shards = []string{singleFile}
	} else if b, err := os.ReadFile(filepath.Join(dir, indexFile)); err == nil {
		var idx struct {
			WeightMap map[string]string `json:"weight_map"`
		}
		path := filepath.Join(dir, indexFile)
		if err := json.Unmarshal(b, &idx); err != nil {
			return nil, fmt.Errorf("%s: invalid JSON: %w", path, err)
		}
		if len(idx.WeightMap) == 0 {
			return nil, fmt.Errorf("%s: weight_map is empty", path)
		}
		for name, f := range idx.WeightMap {
			if f != filepath.Base(f) || !strings.HasSuffix(f, ".safetensors") {
				return nil, fmt.Errorf("%s: tensor %q maps to %q, which is not a .safetensors file in the same directory", path, name, f)
			}
			if !slices.Contains(shards, f) {
				shards = append(shards, f)
			}
		}
		slices.Sort(shards)
	} else if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("%s: no %s or %s", dir, singleFile, indexFile)
	} else {
		return nil, err
	}
	for _, s := range shards {
		f, err := safetensors.Open(filepath.Join(dir, s))
		if err != nil {
			ck.Close()
			return nil, err
		}
		ck.files[s] = f
		for _, name := range f.Names() {
			if prev, dup := ck.where[name]; dup {
				ck.Close()
				return nil, fmt.Errorf("%s: tensor %q is in both %s and %s", dir, name, prev, s)
			}
			ck.where[name] = s
			ck.unused[name] = true
		}
	}
	return ck, nil
}

// Close releases the open shard files.
func (ck *checkpoint) Close() {
	for _, f := range ck.files {
		f.Close()
	}
}

// has reports whether the checkpoint holds the tensor.
func (ck *checkpoint) has(name string) bool { _, ok := ck.where[name]; return ok }

// read returns the named tensor as float32 after checking its shape.
func (ck *checkpoint) read(name string, shape ...int) ([]float32, error) {
	file, ok := ck.where[name]
	if !ok {
		return nil, fmt.Errorf("%s: missing tensor %q", ck.dir, name)
	}
	f := ck.files[file]
	info, _ := f.Info(name)
	if !slices.Equal(info.Shape, shape) {
		return nil, fmt.Errorf("%s: tensor %q has shape %v, the config implies %v", filepath.Join(ck.dir, file), name, info.Shape, shape)
	}
	data, err := f.Float32(name)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Join(ck.dir, file), err)
	}
	delete(ck.unused, name)
	return data, nil
}

// leftover lists tensors never read, except the rotary inv_freq buffers
// that older checkpoints store (they are recomputed from the config).
func (ck *checkpoint) leftover() []string {
	var out []string
	for name := range ck.unused {
		if !strings.HasSuffix(name, "rotary_emb.inv_freq") {
			out = append(out, name)
		}
	}
	slices.Sort(out)
	return out
}
