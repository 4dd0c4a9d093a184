console.log(`post: greeted ${process.env.STATE_greeted}`);
