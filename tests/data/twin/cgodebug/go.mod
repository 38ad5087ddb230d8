module example.test/cgodebug

go 1.22
