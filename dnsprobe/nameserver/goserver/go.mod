module dnsprobe/goserver

go 1.21
