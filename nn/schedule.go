package nn

import (
	"fmt"
	"math"
	"strings"
)

// Schedule is a learning-rate schedule, as HF transformers' get_scheduler
// builds them: a LambdaLR whose multiplier λ(step) starts with a linear
// warmup from 0 and then follows the schedule's shape.
//
// Step convention (HF Trainer, torch LambdaLR): step is the 0-based index
// of the optimizer step about to be taken, so the k-th call of
// Optimizer.Step (k = 0, 1, …) uses LR(base, k, warmup, total). With
// warmup > 0 the very first step therefore has learning rate 0, exactly as
// in HF, and the last of total steps (k = total−1) has a small positive
// rate under linear and cosine decay.
type Schedule int

const (
	// ScheduleConstant is get_constant_schedule_with_warmup:
	// λ = k/warmup during warmup, then 1.
	ScheduleConstant Schedule = iota
	// ScheduleLinear is get_linear_schedule_with_warmup: after warmup,
	// λ = max(0, (total−k)/(total−warmup)), reaching 0 at k = total.
	ScheduleLinear
	// ScheduleCosine is get_cosine_schedule_with_warmup with num_cycles 0.5:
	// after warmup, λ = max(0, ½·(1 + cos(π·progress))),
	// progress = (k−warmup)/(total−warmup).
	ScheduleCosine
)

var scheduleNames = []string{"constant", "linear", "cosine"}

// ParseSchedule returns the schedule called name: "constant" (with
// warmup; "constant_with_warmup" is accepted as HF's name for it),
// "linear" or "cosine". Case and surrounding space are ignored.
func ParseSchedule(name string) (Schedule, error) {
	switch n := strings.ToLower(strings.TrimSpace(name)); n {
	case "constant", "constant_with_warmup":
		return ScheduleConstant, nil
	case "linear":
		return ScheduleLinear, nil
	case "cosine":
		return ScheduleCosine, nil
	}
	return 0, fmt.Errorf("nn: unknown learning-rate schedule %q (valid: %s)", name, strings.Join(scheduleNames, ", "))
}

// String returns the schedule's name as ParseSchedule accepts it.
func (s Schedule) String() string {
	if s < 0 || int(s) >= len(scheduleNames) {
		return fmt.Sprintf("Schedule(%d)", int(s))
	}
	return scheduleNames[s]
}

// LR returns base·λ(step) for the optimizer step with 0-based index step
// (see Schedule for the convention) in a run of total steps whose first
// warmup steps warm up linearly. The formulas are HF's, including their
// edge cases: denominators are clamped to at least 1, and past total the
// linear schedule stays at 0 while the cosine one rises again (HF does not
// clamp progress).
func (s Schedule) LR(base float64, step, warmup, total int) float64 {
	return base * s.lambda(step, warmup, total)
}

func (s Schedule) lambda(step, warmup, total int) float64 {
	if step < warmup {
		return float64(step) / float64(max(1, warmup))
	}
	switch s {
	case ScheduleConstant:
		return 1
	case ScheduleLinear:
		return max(0, float64(total-step)/float64(max(1, total-warmup)))
	case ScheduleCosine:
		const numCycles = 0.5
		progress := float64(step-warmup) / float64(max(1, total-warmup))
		return max(0, 0.5*(1+math.Cos(math.Pi*numCycles*2*progress)))
	}
	panic(fmt.Sprintf("nn: LR of invalid %v", s))
}
