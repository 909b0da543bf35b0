// Entry point: define the components, start the router, resume the session if a token is
// stored (else the login screen shows).

import './components/app.js';
import './components/login.js';
import './components/guilds.js';
import './components/channels.js';
import './components/messages.js';
import './components/composer.js';
import './components/members.js';
import './components/invite.js';
import './components/channel-tools.js';
import './components/side-panel.js';
import './components/forum.js';
import './components/dm-list.js';
import './components/settings.js';
import './components/tracks.js';
import './components/track-upload.js';
import './components/track-page.js';
import './components/player-bar.js';
import { startRouter } from './router.js';
import { startSession } from './session.js';

startRouter();
startSession();
