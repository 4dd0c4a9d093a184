module shithub-actions/bench

go 1.26.8
