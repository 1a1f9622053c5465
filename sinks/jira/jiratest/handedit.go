package jiratest

import "fmt"

// RemoveMember takes an account out of a group as an admin would by hand in Jira's UI (drift
// idsync finds at its next full read).
func (s *Sim) RemoveMember(groupName, accountID string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	g := s.st.groupByName(groupName)
	if g == nil {
		return fmt.Errorf("no group %q", groupName)
	}
	if !g.members.has(accountID) {
		return fmt.Errorf("%s is not a member of %s", accountID, groupName)
	}
	g.members.remove(accountID)
	return nil
}
