package core

import (
	"context"
	"errors"
	"time"

	"github.com/gatehouse/gatehouse/internal/store"
)

// lockedOut reports whether brute-force detection currently refuses the
// user. It is read before the password is checked but acted on after, so a
// locked account costs and answers exactly like a wrong password.
func (s *Service) lockedOut(ctx context.Context, v *realmView, userID string, now time.Time) (bool, *Error) {
	if !v.r.Settings.BruteForce.Protected {
		return false, nil
	}
	lf, err := s.st.GetLoginFailure(ctx, v.r.Name, userID)
	if errors.Is(err, store.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, s.internal("login failure lookup", err)
	}
	return lf.LockedForever || now.Before(lf.LockedUntil), nil
}

// recordFailure follows Keycloak's BruteForceProtector: failures within
// maxDeltaTimeSeconds accumulate; every failureFactor-th failure locks the
// user for waitIncrementSeconds × (failures / failureFactor), capped at
// maxFailureWaitSeconds, or for good with permanentLockout; two failures
// closer than quickLoginCheckMilliSeconds lock for
// minimumQuickLoginWaitSeconds.
func (s *Service) recordFailure(ctx context.Context, v *realmView, userID, ip string, now time.Time) *Error {
	bf := v.r.Settings.BruteForce
	if !bf.Protected {
		return nil
	}
	err := s.st.UpdateLoginFailure(ctx, v.r.Name, userID, func(lf store.LoginFailure) (store.LoginFailure, error) {
		if lf.LockedForever || now.Before(lf.LockedUntil) {
			return lf, nil
		}
		if !lf.LastFailure.IsZero() && bf.MaxDeltaTimeSeconds > 0 &&
			now.Sub(lf.LastFailure) > time.Duration(bf.MaxDeltaTimeSeconds)*time.Second {
			lf.NumFailures = 0
		}
		quick := !lf.LastFailure.IsZero() && now.Sub(lf.LastFailure) < time.Duration(bf.QuickLoginCheckMilliSeconds)*time.Millisecond
		lf.NumFailures++
		lf.LastFailure = now
		lf.LastIP = ip
		if bf.FailureFactor > 0 && lf.NumFailures%bf.FailureFactor == 0 {
			if bf.PermanentLockout {
				lf.LockedForever = true
				return lf, nil
			}
			wait := time.Duration(bf.WaitIncrementSeconds) * time.Second * time.Duration(lf.NumFailures/bf.FailureFactor)
			if max := time.Duration(bf.MaxFailureWaitSeconds) * time.Second; max > 0 && wait > max {
				wait = max
			}
			lf.LockedUntil = now.Add(wait)
		} else if quick && bf.MinimumQuickLoginWaitSeconds > 0 {
			lf.LockedUntil = now.Add(time.Duration(bf.MinimumQuickLoginWaitSeconds) * time.Second)
		}
		return lf, nil
	})
	if err != nil {
		return s.internal("record login failure", err)
	}
	return nil
}

// recordSuccess clears the failure count, as Keycloak does on a successful
// login.
func (s *Service) recordSuccess(ctx context.Context, v *realmView, userID string) *Error {
	if !v.r.Settings.BruteForce.Protected {
		return nil
	}
	if err := s.st.DeleteLoginFailure(ctx, v.r.Name, userID); err != nil && !errors.Is(err, store.ErrNotFound) {
		return s.internal("clear login failure", err)
	}
	return nil
}

// Unlock clears a user's brute-force lock (the admin "unlock" command).
func (s *Service) Unlock(ctx context.Context, realm, username string) error {
	u, err := s.st.GetUserByUsername(ctx, realm, username)
	if err != nil {
		return err
	}
	err = s.st.DeleteLoginFailure(ctx, realm, u.ID)
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	return err
}
