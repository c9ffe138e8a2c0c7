package reconciler

// The external tests (package reconciler_test) drive Execute with
// reconcilertest.Fake, which imports this package and so cannot be used
// from the internal tests; these aliases give them the unexported helpers
// they share with the internal tests.
var (
	ActionStrings = actionStrings
	Available     = available
	Deployment    = deployment
	ExpandText    = expandText
	Load          = load
	LoadSite      = loadSite
	NoticeStrings = noticeStrings
	Now           = now
	PlanText      = planText
	PodSubject    = podSubject
	RunningPod    = running
	ShortHash     = shortHash
	SortDesired   = sortDesired
	TestPod       = tpod
	WithContainer = withContainer
)
