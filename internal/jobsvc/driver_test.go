package jobsvc

import _ "modernc.org/sqlite" // the tests open their own database
