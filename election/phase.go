package election

import "fmt"

// Phase is where an elector's campaign is, as Elector.Phase reports it: the
// named states of the engine's state machine.
type Phase int32

const (
	// PhaseStopped: not started yet, or the campaign has ended (Close, or
	// the end of Start's context).
	PhaseStopped Phase = iota
	// PhaseConnecting: creating a session, or waiting for the shared
	// session to have one.
	PhaseConnecting
	// PhaseFollowing: another candidate leads; the elector waits for a
	// change of the leadership.
	PhaseFollowing
	// PhaseHoldingOff: no leader is known, but the elector leaves others
	// the first chance, after a Release, a failed term or Consul's
	// lock-delay. (Holding off while another candidate leads shows as
	// PhaseFollowing.)
	PhaseHoldingOff
	// PhaseAcquiring: the elector is trying to acquire the leadership.
	PhaseAcquiring
	// PhaseLeading: a term of this elector runs.
	PhaseLeading
	// PhaseReleasing: a term ended; the elector is giving the leadership
	// up in the store (after its handler returned).
	PhaseReleasing
)

var phaseNames = [...]string{"stopped", "connecting", "following", "holding off", "acquiring", "leading", "releasing"}

// String returns the phase's name, for example "following".
func (p Phase) String() string {
	if p >= 0 && int(p) < len(phaseNames) {
		return phaseNames[p]
	}
	return fmt.Sprintf("Phase(%d)", int32(p))
}

// Phase reports where the elector's campaign is now. It reads no store and
// takes no lock. It changes with the engine's state: PhaseLeading begins
// with the acquisition, before the handler's leader call (which IsLeader
// reports), and a term's end shows as PhaseReleasing while the store is
// being released. Meant for health checks and metrics; decide on leading
// with IsLeader, or the term's context.
func (el *Elector) Phase() Phase {
	if el == nil || el.e == nil {
		return PhaseStopped
	}
	return Phase(el.e.phase.Load())
}

func (e *engine) setPhase(p Phase) { e.phase.Store(int32(p)) }
