module dnsprobe/probe

go 1.21
