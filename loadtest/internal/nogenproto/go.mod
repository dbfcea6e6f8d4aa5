// An empty stand-in for the pre-2023 monolithic google.golang.org/genproto,
// used only by loadtest/go.work. See the comment there.
module google.golang.org/genproto

go 1.26.0
