// Swift 6 makes top-level code main-actor isolated; threads must not be started from closures
// written here (FASTCGI-NOTES.md), so this file only hands over to the command.
LKJWTCommand.main()
